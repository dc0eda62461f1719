# The two commands a newcomer runs: `make demo` and `make test` (CI runs `make test`).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup demo test lint prereqs

# The venv itself, on a Python >= 3.10.
$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "make: dspy-otel needs Python >= 3.10; $(PYTHON) is $$($(PYTHON) --version 2>&1) (set PYTHON=python3.x)" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# `make demo` needs the package and DSPy only.
$(VENV)/.installed-demo: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[instruments]"
	touch $@

# `make test` needs the test toolchain too (pytest, ruff, mypy, ...); it covers the demo's needs.
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[test,instruments]"
	touch $@ $(VENV)/.installed-demo

demo: $(VENV)/.installed-demo
	$(VENV)/bin/dspy-otel demo

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# docker-compose (to check docker-compose.yml) and the Go-built collector and Jaeger for the integration tests.
prereqs: setup
	bash scripts/install-prereqs.sh

test: lint prereqs
	$(VENV)/bin/pytest

