# latentlapse: `make demo` trains and reports side by side; `make test` runs every test.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
UV_VERSION := 0.13.9
TORCH_ENV := .cache/torch-venv

.PHONY: demo test test-fast test-docker torch-env lock lint clean-venv

$(VENV)/.installed: requirements/dev.txt pyproject.toml setup.py reporter/embedding/_kernels.c
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "latentlapse needs Python 3.11 (mxnet 1.9.1 has no wheels for others): set PYTHON=python3.11")'
	@$(PYTHON) -c 'import os, shutil, sys, sysconfig; cc = (sysconfig.get_config_var("CC") or "cc").split()[0]; headers = os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")); shutil.which(cc) and headers or print("latentlapse: no C compiler (" + cc + ") or no Python.h: the optional C accelerator (reporter/embedding/_kernels.c) will be skipped and the reporter run on openTSNE'"'"'s path, slower (apt install gcc python3-dev for it)", file=sys.stderr)'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	# Exactly the locked set (hashes checked), then the project itself without touching it.
	# Compiled to bytecode now: where PYTHONDONTWRITEBYTECODE is set, every process would compile
	# every module it imports again (~5 s for the reporter's imports).
	$(UV) pip sync --quiet --compile-bytecode --python $(PY) requirements/dev.txt
	$(UV) pip install --quiet --python $(PY) --no-deps uv==$(UV_VERSION) -e .
	touch $@

demo: $(VENV)/.installed
	bash scripts/demo.sh

test: $(VENV)/.installed $(TORCH_ENV)/.installed
	$(PY) -m pytest

# PyTorch beside the project, for the test of docs/own-model.md's PyTorch recipe (the project's own
# environment has no torch). torch 2.13.0 is the CPU build where pip finds it on disk; elsewhere pip
# downloads it from your package index.
torch-env: $(TORCH_ENV)/.installed

$(TORCH_ENV)/.installed:
	$(PYTHON) -m venv $(TORCH_ENV)
	$(TORCH_ENV)/bin/pip install --quiet --disable-pip-version-check torch==2.13.0 smdebug==1.0.34 "numpy<2" pandas psutil requests
	touch $@

# Everything but the end-to-end tests (marked e2e: training, browser, S3 server, reporter processes).
test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not e2e"

# The compose stack built and run on a real Docker engine (CI installs and starts one).
test-docker:
	bash .ci/docker-e2e.sh

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check trainer reporter tests benchmarks latentlapse docker

# Re-resolve the pins in pyproject.toml and write the hashed lock files.
lock:
	uv lock
	for s in trainer reporter; do uv export -q --frozen --no-emit-project --extra $$s -o requirements/$$s.txt; done
	uv export -q --frozen --no-emit-project --extra trainer --extra reporter --extra sagemaker --extra dev -o requirements/dev.txt
	uv export -q --frozen --no-emit-project --all-extras -o requirements/all.txt

clean-venv:
	rm -rf $(VENV)
