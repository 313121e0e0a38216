#!/usr/bin/env bash
# The GPU check (bench/gpu_check.py's docstring says what it runs):
#   bash bench/gpu_check.sh             on a CUDA GPU (sized for under 5 minutes on one H100)
#   bash bench/gpu_check.sh --dry-run   anywhere: every step on the CPU, tiny sizes
# Python: $PYTHON, else .venv/bin/python, else python3 (it needs torch and this project's requirements).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
# The resume step trains with train.deterministic, which needs cuBLAS's deterministic workspace from its start.
export CUBLAS_WORKSPACE_CONFIG="${CUBLAS_WORKSPACE_CONFIG:-:4096:8}"
exec "$PYTHON" bench/gpu_check.py "$@"
