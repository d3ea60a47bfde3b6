# Every target does its own set-up: a fresh machine needs only Python 3.11+, make and PyPI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The uv pin must match the one in pyproject.toml's dev group (uv sync keeps it installed).
UV_VERSION := 0.13.8
PORT ?= 8000
JINJI_DATA_DIR ?= .data
export JINJI_DATA_DIR

.PHONY: run test lint fmt bench load clean install web

install: $(VENV)/.synced

$(VENV)/.synced: pyproject.toml uv.lock
	@test -x $(BIN)/uv || { $(PYTHON) -m venv $(VENV) && $(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION); }
	$(BIN)/uv sync --locked --quiet
	@touch $@

run: install web
	$(BIN)/jinji up --port $(PORT)

# The web console (web/, served at / by jinji up): npm ci when the lock file changes, a build
# when a source does; both skipped when nothing changed.
WEB_SOURCES := $(shell find web/src web/public -type f) web/index.html web/vite.config.ts web/tsconfig.json
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SOURCES)
	cd web && npm run --silent build
web: web/dist/index.html

# The chart tests (tests/chart) run Debian's Prometheus (prometheus, promtool) and
# postgres_exporter, each on a free loopback port of its own. Installed only when missing.
DEBIAN_TEST_TOOLS := /usr/bin/promtool /usr/bin/prometheus /usr/bin/prometheus-postgres-exporter
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
$(DEBIAN_TEST_TOOLS) &:
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
		prometheus prometheus-postgres-exporter >/dev/null

# The console's browser tests (tests/console) drive Debian's Chromium, with a Japanese font
# for readable screenshots. Installed only when missing.
BROWSER_TEST_TOOLS := /usr/bin/chromium /usr/share/fonts/opentype/ipafont-gothic/ipag.ttf
$(BROWSER_TEST_TOOLS) &:
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium fonts-ipafont-gothic >/dev/null

test: install $(DEBIAN_TEST_TOOLS) web $(BROWSER_TEST_TOOLS)
	$(BIN)/pytest $(PYTEST_ARGS)

# Speed figures, each a ratio to a baseline measured in the same run: each benchmark's JSON
# line is stored in bench/results.json (with the machine, date and commit), then the table in
# docs/performance.md is written from it.
RECORD := $(BIN)/python bench/report.py record --
bench: install
	$(RECORD) $(BIN)/python bench/migrate_tenants.py --tenants 1000 --workers 2
	$(RECORD) $(BIN)/python bench/provision_tenants.py --tenants 20 2>/dev/null
	$(RECORD) $(BIN)/python bench/audit_log.py --events 20000 --batch 500 2>/dev/null
	$(RECORD) $(BIN)/python bench/ingest_employees.py --rows 1000000 2>/dev/null
	$(RECORD) $(BIN)/python bench/backup_restore.py --rows 1000000 2>/dev/null
	$(RECORD) $(BIN)/python bench/analytics.py 2>/dev/null
	$(RECORD) $(BIN)/python bench/api_reads.py --concurrency 32 2>/dev/null
	$(RECORD) $(BIN)/python bench/logins.py 2>/dev/null
	$(BIN)/python bench/report.py write

# A mixed workload from several tenants against `jinji up` on loopback for LOAD_SECONDS; exits
# non-zero on a 5xx, a lost or doubled audit event, or an accepted upload that cannot be read.
LOAD_SECONDS ?= 60
load: install
	$(BIN)/python bench/load.py --seconds $(LOAD_SECONDS)

lint: install web/node_modules/.package-lock.json
	$(BIN)/ruff check libs services tests migrations bench
	$(BIN)/ruff format --check libs services tests migrations bench
	$(BIN)/mypy
	cd web && npm run --silent typecheck

fmt: install
	$(BIN)/ruff format libs services tests migrations bench
	$(BIN)/ruff check --fix libs services tests migrations bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache web/node_modules web/dist
