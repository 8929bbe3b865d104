# ketaflow: `make demo` runs the synthetic demo clinic, `make test` runs every check CI runs.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PY_VERSION := $(shell cat .python-version)
# The first interpreter of a given X.Y that really runs (a pyenv shim can exist and refuse).
find_python = $(shell for p in python$(1) $$(ls -d $$HOME/.pyenv/versions/$(1)*/bin/python$(1) 2>/dev/null) /usr/bin/python$(1); do \
	$$p -c 'import sys; sys.exit(sys.version_info[:2] != tuple(map(int, "$(1)".split("."))))' 2>/dev/null && { echo $$p; break; }; done)
PYTHON := $(call find_python,$(PY_VERSION))
# pip warns about every unused local index it is configured with; keep the output readable.
QUIET_PIP := 2>&1 | { grep -v '^WARNING: Location .* is ignored' || true; }
VENV := .venv
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint format unit unit-postgres e2e bench opentiva lock clean check-python

check-python:
	@test -n "$(PYTHON)" || { echo "Python $(PY_VERSION) (from .python-version) is not installed: install it, e.g. 'pyenv install $(PY_VERSION)'." >&2; exit 1; }

$(BIN)/.base: requirements/base.lock pyproject.toml | check-python
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --require-hashes -r requirements/base.lock $(QUIET_PIP)
	$(BIN)/pip install -q --no-deps -e . $(QUIET_PIP)
	@touch $@

$(BIN)/.dev: requirements/dev.lock $(BIN)/.base
	$(BIN)/pip install -q --require-hashes -r requirements/dev.lock $(QUIET_PIP)
	@touch $@

demo: $(BIN)/.base
	$(BIN)/ketaflow demo

# Everything CI runs: lint, the whole suite on SQLite, again on a throwaway PostgreSQL, then the browser tests.
test: $(BIN)/.dev opentiva
	@bash scripts/ensure-system-deps.sh
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory unit-postgres
	$(MAKE) --no-print-directory e2e

lint: $(BIN)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

unit: $(BIN)/.dev
	@echo "== pytest on SQLite =="
	$(BIN)/pytest -m "not e2e" -q $(PYTEST_ARGS)

unit-postgres: $(BIN)/.dev
	@echo "== pytest on PostgreSQL =="
	$(BIN)/python scripts/with_postgres.py -- $(BIN)/pytest -m "not e2e" -q $(PYTEST_ARGS)

e2e: $(BIN)/.dev
	@bash scripts/ensure-system-deps.sh
	@echo "== browser tests (Playwright, Debian chromium) =="
	$(BIN)/pytest -m e2e -q $(PYTEST_ARGS)

bench: $(BIN)/.dev opentiva
	$(BIN)/python -m benchmarks $(BENCH_ARGS)

# opentiva (an independent PK implementation) only builds on Python 3.10: a separate venv for the PK comparison.
OPENTIVA_PY := $(call find_python,3.10)
opentiva: .venv-opentiva/.ok
.venv-opentiva/.ok:
	@test -n "$(OPENTIVA_PY)" || { echo "Python 3.10 is needed for the opentiva comparison venv (pyenv install 3.10)." >&2; exit 1; }
	$(OPENTIVA_PY) -m venv .venv-opentiva
	.venv-opentiva/bin/pip install -q opentiva==1.1.2 $(QUIET_PIP)
	@touch $@

# Maintainers: re-resolve the pinned, hashed lock files after changing pyproject.toml.
lock:
	python$(PY_VERSION) -m venv /tmp/ketaflow-uv && /tmp/ketaflow-uv/bin/pip install -q uv
	/tmp/ketaflow-uv/bin/uv pip compile pyproject.toml -q --python-version $(PY_VERSION) --generate-hashes -o requirements/base.lock
	/tmp/ketaflow-uv/bin/uv pip compile pyproject.toml -q --extra dev --python-version $(PY_VERSION) --generate-hashes -o requirements/dev.lock

format: $(BIN)/.dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .venv-opentiva var/test
