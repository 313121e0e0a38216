# The two commands of the README: `make run` (the pipeline) and `make test` (the suite).
# Both create or refresh the virtual environment .venv first.
#
# CPU path: torch is pinned to the CPU build 2.13.0 so no CUDA build is downloaded.
# With a GPU, install your CUDA build of torch in .venv first and run with TORCH= (empty).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TORCH ?= torch==2.13.0

.PHONY: run test venv clean-venv

venv: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@if [ -n "$(TORCH)" ]; then $(PY) -m pip install --disable-pip-version-check -q $(TORCH); fi
	$(PY) -m pip install --disable-pip-version-check -q -e ".[test]"
	@touch $(STAMP)

run: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" dvc repro

test: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
