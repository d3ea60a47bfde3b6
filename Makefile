# Every target does its own set-up: a fresh machine needs only Python 3.11+, make and PyPI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The uv pin must match the one in pyproject.toml's dev group (uv sync keeps it installed).
UV_VERSION := 0.13.8
PORT ?= 8000
JINJI_DATA_DIR ?= .data
export JINJI_DATA_DIR

.PHONY: run test lint fmt bench clean install

install: $(VENV)/.synced

$(VENV)/.synced: pyproject.toml uv.lock
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION); }
	$(BIN)/uv sync --locked --quiet
	@touch $@

run: install
	$(BIN)/jinji up --port $(PORT)

# The chart tests (tests/chart) run Debian's Prometheus (prometheus, promtool) and
# postgres_exporter, each on a free loopback port of its own. Installed only when missing.
DEBIAN_TEST_TOOLS := /usr/bin/promtool /usr/bin/prometheus /usr/bin/prometheus-postgres-exporter
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
$(DEBIAN_TEST_TOOLS) &:
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
		prometheus prometheus-postgres-exporter >/dev/null

test: install $(DEBIAN_TEST_TOOLS)
	$(BIN)/pytest $(PYTEST_ARGS)

# Speed figures, each a ratio to a baseline measured in the same run.
bench: install
	$(BIN)/python bench/migrate_tenants.py --tenants 1000 --workers 2
	$(BIN)/python bench/provision_tenants.py --tenants 20 2>/dev/null
	$(BIN)/python bench/audit_log.py --events 20000 --batch 500 2>/dev/null
	$(BIN)/python bench/ingest_employees.py --rows 1000000 2>/dev/null

lint: install
	$(BIN)/ruff check libs services tests migrations bench
	$(BIN)/ruff format --check libs services tests migrations bench
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format libs services tests migrations bench
	$(BIN)/ruff check --fix libs services tests migrations bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
