# Two entry points for a fresh machine: `make run` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install run test lint bench clean bqemulator azurite audit

# requirements.lock pins every package (regenerate: a fresh venv, `pip install -e '.[dev]'`, `pip freeze
# --exclude-editable`); installs are constrained to it, so CI and `make audit` see the same versions.
$(BIN)/finrecon: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --constraint requirements.lock -e '.[dev]'
	touch $(BIN)/finrecon

install: $(BIN)/finrecon

run: install
	$(BIN)/finrecon run

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Two workers (pytest-xdist), a test file each: most tests wait on local servers and subprocesses, so two
# workers finish in about 0.6 of the time of one even on two cores. `make test TEST_WORKERS=0` runs in-process.
TEST_WORKERS ?= 2
test: lint bqemulator azurite
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# Known vulnerabilities in the locked dependencies (pip-audit in its own venv; .ci/audit.py says when the
# advisory service cannot be reached instead of reporting a pass). CI runs it before the tests.
AUDIT_VENV := .venv-audit
audit:
	test -x $(AUDIT_VENV)/bin/pip-audit || ($(PYTHON) -m venv $(AUDIT_VENV) && $(AUDIT_VENV)/bin/pip install --quiet 'pip-audit>=2.10,<2.11')
	$(AUDIT_VENV)/bin/python .ci/audit.py requirements.lock

# Benchmarks (not part of the tests; see BENCHMARKS.md): `make bench ROWS=10000000 FORMAT=parquet` (one size);
# `make bench MODE=matrix [CASES=parquet-1x10M,csvgz-1x10M] [SCALE=0.01]` (issue 16's file-size matrix);
# `make bench MODE=cur EXPORT=cur_legacy|cur2 ROWS=1000000` (AWS CUR from a local S3 against focus-converter);
# `make bench MODE=azure AZURE_EXPORT=FocusCost|ActualCost ROWS=1000000` (Azure export parts from Azurite).
ROWS ?= 1000000
FORMAT ?= parquet
MODE ?= run
CASES ?=
SCALE ?= 1
EXPORT ?= cur_legacy
AZURE_EXPORT ?= FocusCost
bench: install $(if $(filter azure,$(MODE)),azurite)
ifeq ($(MODE),matrix)
	$(BIN)/finrecon bench matrix --scale $(SCALE) $(if $(CASES),--cases $(CASES))
else ifeq ($(MODE),cur)
	$(BIN)/finrecon bench cur --rows $(ROWS) --export-type $(EXPORT)
else ifeq ($(MODE),azure)
	$(BIN)/finrecon bench azure --rows $(ROWS) --export-type $(AZURE_EXPORT)
else
	$(BIN)/finrecon bench run --rows $(ROWS) --format $(FORMAT)
endif

clean:
	rm -rf data/finops.duckdb data/state.duckdb data/lake data/downloads .bench .pytest_cache .mypy_cache

# The BigQuery emulator for the GCP connector tests, in its own venv: it pins duckdb 1.5.5 (the project uses 2.x).
# Its DuckDB `spatial` extension is installed offline from the wheel into $(BQEMU_VENV)/duckdb-home/.duckdb, and
# tests/gcp_rig.py starts the emulator with HOME=$(BQEMU_VENV)/duckdb-home so DuckDB finds it there.
# The stamp is written last; `rm -rf $(BQEMU_VENV)` forces a rebuild.
BQEMU_VENV := .venv-bqemulator
BQEMU_PINS := "bqemulator==1.4.0" google-cloud-bigquery numpy "duckdb==1.5.5" "duckdb-extension-spatial==1.5.5" "duckdb-extensions==1.5.5"

bqemulator: $(BQEMU_VENV)/.stamp

$(BQEMU_VENV)/.stamp:
	rm -rf $(BQEMU_VENV)
	$(PYTHON) -m venv $(BQEMU_VENV)
	$(BQEMU_VENV)/bin/pip install --quiet $(BQEMU_PINS)
	mkdir -p $(BQEMU_VENV)/duckdb-home
	HOME="$(CURDIR)/$(BQEMU_VENV)/duckdb-home" $(BQEMU_VENV)/bin/python -c \
	  "from duckdb_extensions import import_extension; import_extension('spatial')"
	HOME="$(CURDIR)/$(BQEMU_VENV)/duckdb-home" $(BQEMU_VENV)/bin/python -c \
	  "import duckdb; duckdb.execute('LOAD spatial')"
	touch $@

# Azurite (the official Azure Storage emulator, from npm) for the Azure connector tests: tests/azure_rig.py runs its
# blob service with `node` ($(AZURITE_DIR)/node_modules/azurite/dist/src/blob/main.js, what .bin/azurite-blob links
# to). Pinned to 3.35.0, the last release whose engines allow Node 20 (3.36 needs Node >= 21, 3.37 >= 22).
# npm writes package.json/package-lock.json into $(AZURITE_DIR) (gitignored). The stamp carries the version and
# is written last, so a version bump reinstalls; `rm -rf $(AZURITE_DIR)` forces a reinstall.
AZURITE_DIR := .azurite
AZURITE_VERSION := 3.35.0

azurite: $(AZURITE_DIR)/.stamp-$(AZURITE_VERSION)

$(AZURITE_DIR)/.stamp-$(AZURITE_VERSION):
	rm -rf $(AZURITE_DIR)
	mkdir -p $(AZURITE_DIR)
	npm install --prefix $(AZURITE_DIR) --save-exact --no-audit --no-fund --loglevel=error "azurite@$(AZURITE_VERSION)"
	$(AZURITE_DIR)/node_modules/.bin/azurite-blob --version
	touch $@
