# The two commands of the README: `make run` (the pipeline) and `make test` (the suite);
# `make recipe NAME=...` runs a benchmark recipe (recipes/NAME).
# Both create or refresh the virtual environment .venv first.
#
# CPU path: torch is pinned to the CPU build 2.13.0 so no CUDA build is downloaded.
# With a GPU, install your CUDA build of torch in .venv first and run with TORCH= (empty).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH ?= torch==2.13.0

.PHONY: run test test-fast recipe venv clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if [ -n "$(TORCH)" ]; then $(PY) -m pip install --disable-pip-version-check -q $(TORCH); fi
	$(PY) -m pip install --disable-pip-version-check -q -e ".[onnx,test]"
	@touch $(STAMP)

run: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" dvc repro

# A benchmark recipe: `make recipe NAME=multi30k-en-de` runs recipes/NAME, a DVC project of its own (outputs,
# dvc.lock and metrics stay in its folder; the root's `dvc status` and `dvc exp` leave it alone).
recipe: $(STAMP)
	@test -n "$(NAME)" -a -f "recipes/$(NAME)/params.yaml" || { echo "error: make recipe: set NAME to one of: $$(cd recipes && ls -d */ | tr -d / | tr '\n' ' ')" >&2; exit 2; }
	cd recipes/$(NAME) && PATH="$(CURDIR)/$(VENV)/bin:$$PATH" dvc repro

# The tests run in parallel, one pytest-xdist worker per core (at most 4); tests/conftest.py keeps the
# workers from thrashing. PYTEST_ARGS adds options.
PYTEST := PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -q -n auto --maxprocesses 4

# Everything, a module's tests on one worker: the end-to-end modules build their pipelines once.
test: $(STAMP)
	$(PYTEST) --dist loadscope $(PYTEST_ARGS)

# The unit tests alone (pytest -m "not e2e"), spread test by test: what to run after changing a function.
test-fast: $(STAMP)
	$(PYTEST) -m "not e2e" $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
