# xephang — the README's commands. `make run` sets up everything on a fresh machine and
# serves the demo city; `make test` runs the suite. Installs are stamped, so a second run
# only redoes what changed (pyproject.toml, package-lock.json, a .po file).

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
FLASK := $(BIN)/flask --app wsgi
HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=
# Links in QR codes and messages are built on XEPHANG_BASE_URL: by default the address the
# demo is served on (on 0.0.0.0 or ::, this machine's first network address, so phones on
# the same network can open them).
PUBLIC_HOST := $(if $(filter 0.0.0.0 ::,$(HOST)),$(or $(shell hostname -I 2>/dev/null | cut -d' ' -f1),127.0.0.1),$(HOST))
XEPHANG_BASE_URL ?= http://$(PUBLIC_HOST):$(PORT)
BENCH_ARGS ?=
FUZZ_ARGS ?=

# Python 3.11 by name, else python3 when it is 3.11 or newer.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || \
	{ python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null && command -v python3; })

VENV_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
PO_FILES := $(wildcard xephang/translations/*/LC_MESSAGES/messages.po)
MO_FILES := $(PO_FILES:.po=.mo)

.PHONY: help setup run test lint migrations-check fuzz bench bench-floor bench-fanout clean

help:
	@echo "make run               set up (venv, Python + npm deps, translations, database,"
	@echo "                       demo city) and serve http://$(HOST):$(PORT) on SQLite"
	@echo "make test              set up, then run the test suite (PYTEST_ARGS=... to pass on)"
	@echo "make lint              ruff check, ruff format --check, import contracts (import-linter)"
	@echo "make migrations-check  Alembic up/down/up + drift check on SQLite (and PostgreSQL"
	@echo "                       when XEPHANG_TEST_POSTGRES_URL is set)"
	@echo "make fuzz              schemathesis against the served OpenAPI document on a scratch"
	@echo "                       PostgreSQL database (XEPHANG_TEST_POSTGRES_URL; FUZZ_ARGS=...)"
	@echo "make bench             booking and search benchmark on PostgreSQL (BENCH_ARGS=...)"
	@echo "make bench-floor       kiosk issue and call-next benchmark on PostgreSQL (BENCH_ARGS=...)"
	@echo "make bench-fanout      board fan-out (Socket.IO) benchmark, 1 and 2 processes + Redis"
	@echo "                       (BENCH_ARGS=--quick for a short run)"
	@echo "make clean             remove .venv, node_modules and compiled translations"

$(VENV_STAMP): pyproject.toml
	@if [ ! -x $(PY) ]; then \
		if [ -z "$(PYTHON)" ]; then echo "xephang needs Python 3.11 or newer (python3.11 or python3)" >&2; exit 1; fi; \
		echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $@

$(NODE_STAMP): package.json package-lock.json
	@command -v npm >/dev/null || { echo "xephang needs Node.js and npm (front-end libraries)" >&2; exit 1; }
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# Compiled catalogues are build output (gitignored); rebuilt when their .po changes.
%.mo: %.po | $(VENV_STAMP)
	$(BIN)/pybabel compile --input-file $< --output-file $@

setup: $(VENV_STAMP) $(NODE_STAMP) $(MO_FILES)

run: export XEPHANG_BASE_URL := $(XEPHANG_BASE_URL)
run: setup
	$(FLASK) db upgrade
	$(FLASK) demo setup
	@echo "xephang: serving the demo city at $(XEPHANG_BASE_URL)  (Ctrl+C stops)"
	$(FLASK) run --host $(HOST) --port $(PORT) --with-threads

# pytest exits 5 when it collected nothing: that is a failure here, not a pass.
test: setup
	@$(BIN)/pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest ran no tests" >&2; fi; \
	exit $$status

lint: $(VENV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

migrations-check: $(VENV_STAMP)
	$(PY) tools/check_migrations.py

fuzz: setup
	$(PY) tools/fuzz_api.py $(FUZZ_ARGS)

bench: setup
	$(PY) bench/booking.py $(BENCH_ARGS)

bench-floor: setup
	$(PY) bench/floor.py $(BENCH_ARGS)

bench-fanout: setup
	$(PY) bench/fanout.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules
	rm -f $(MO_FILES)
