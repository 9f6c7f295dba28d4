# Two entry points for a fresh machine: `make run` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench clean

$(BIN)/finrecon: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/finrecon

install: $(BIN)/finrecon

run: install
	$(BIN)/finrecon run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# Benchmarks (not part of the tests): `make bench ROWS=10000000 FORMAT=parquet`; see BENCHMARKS.md.
ROWS ?= 1000000
FORMAT ?= parquet
bench: install
	$(BIN)/finrecon bench run --rows $(ROWS) --format $(FORMAT)

clean:
	rm -rf data/finops.duckdb data/state.duckdb data/lake data/downloads .bench .pytest_cache .mypy_cache
