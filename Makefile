# The two commands a newcomer runs: `make demo` and `make test` (CI runs `make test`).
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup demo test lint prereqs

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,instruments]"
	touch $@

demo: setup
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
