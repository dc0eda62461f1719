# The two commands a newcomer runs: `make demo` and `make test` (CI runs `make test`); `make stack` for Jaeger.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
# Go builds the integration tests' collector and Jaeger: found on PATH, else here (where the official tarball goes).
GO_DIR ?= /usr/local/go/bin
export GO_DIR
export PATH := $(PATH)$(if $(GO_DIR),:$(GO_DIR))

.PHONY: setup demo test lint docs docs-serve prereqs pytest stack

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
# Without Go they are skipped (one line here, one in pytest's summary), except under CI=true, where this fails.
prereqs: setup
	bash scripts/install-prereqs.sh

test: lint docs pytest

# The documentation site (mkdocs.yml, docs/) into site/; --strict turns a broken link or anchor into a failure
# (not --quiet: it hides the warnings that --strict counts).
docs: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# The same site on http://127.0.0.1:8000, rebuilt on every change.
docs-serve: setup
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

# The tests alone, e.g. make pytest PYTEST_ARGS="tests/test_cli.py -x". The plugin folds skipped integration tests
# into one summary line per reason.
pytest: prereqs
	PYTHONPATH=tests$${PYTHONPATH:+:$$PYTHONPATH} $(VENV)/bin/pytest -p skip_summary $(PYTEST_ARGS)


# The collector and Jaeger of the integration tests, on localhost and without Docker: OTLP on 4317/4318, Jaeger UI
# on 16686. Ctrl-C stops both. Other ports: make stack STACK_FLAGS="--otlp-grpc-port 14317 --ui-port 16687".
stack:
	$(PYTHON) scripts/run_stack.py $(STACK_FLAGS)
