# Two commands on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check bench clean venv docs

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/modelloop demo

check: $(STAMP)
	$(BIN)/ruff format --check modelloop tests benchmarks
	$(BIN)/ruff check modelloop tests benchmarks
	$(BIN)/mypy

test: check
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/tracking.py

docs: $(STAMP)
	$(BIN)/python -m modelloop.cli.docgen > docs/cli.md
	$(BIN)/python -m modelloop.cli.docgen --settings > docs/settings.md

clean:
	rm -rf $(VENV) .modelloop .pytest_cache .mypy_cache .ruff_cache
