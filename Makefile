# Run `make` for the list of targets. Every target sets up .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help setup demo plan bench realdata test lint typecheck pytest clean

help: ## show this help
	@echo "temporaldb: temporal sports-analytics database on AWS RDS PostgreSQL"
	@echo
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,analysis]'
	@touch $(STAMP)

# The upgrade drill's oldest source, PostgreSQL 15, comes from Debian (16 and 18 come from wheels).
PG15_BIN := /usr/lib/postgresql/15/bin
$(PG15_BIN)/pg_ctl:
	@command -v apt-get >/dev/null || { echo "PostgreSQL 15 is needed at $(PG15_BIN): install it with your package manager"; exit 1; }
	@SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO mkdir -p /etc/postgresql-common && \
	  { grep -qs '^create_main_cluster' /etc/postgresql-common/createcluster.conf || \
	    echo 'create_main_cluster = false' | $$SUDO tee -a /etc/postgresql-common/createcluster.conf >/dev/null; } && \
	  $$SUDO apt-get install -y --no-install-recommends postgresql-15 >/dev/null || \
	  { $$SUDO apt-get update >/dev/null && $$SUDO apt-get install -y --no-install-recommends postgresql-15 >/dev/null; }
	@test -x $@

setup: $(STAMP) $(PG15_BIN)/pg_ctl ## create .venv with the program, the CLI and the dev tools; PostgreSQL 15 (apt)

demo: plan $(STAMP) ## the main job: plan both stacks, then the database locally with an as-of answer
	$(BIN)/temporaldb demo

plan: $(STAMP) ## offline plan and monthly cost of both stacks
	$(BIN)/temporaldb plan --stack dev
	@echo
	$(BIN)/temporaldb plan --stack prod

bench: $(STAMP) ## full-history benchmark (about 10 minutes), writes bench/RESULTS.md
	$(BIN)/temporaldb local start
	$(BIN)/temporaldb bench --results bench/RESULTS.md

REALDATA := ../shared/realdata
realdata: $(STAMP) ## import and reconcile the games in ../shared/realdata, strictly, into the local server
	$(BIN)/temporaldb local start
	$(BIN)/temporaldb import $(REALDATA)/raw --strict --report .local/realdata-report.txt

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy --strict on components/, infra/, temporaldb/, runbooks/
	$(BIN)/mypy

pytest: $(STAMP) $(PG15_BIN)/pg_ctl ## the test suite only
	$(BIN)/pytest

test: lint typecheck pytest ## everything CI runs

clean: ## stop the local server; remove .venv, .local (or the project's /var/tmp area) and caches
	-test -x $(BIN)/temporaldb && $(BIN)/temporaldb local stop
	@# As root, a checkout the server account cannot enter keeps its server under /var/tmp/temporaldb-<hash>.
	-test -x $(BIN)/python && $(BIN)/python -c 'import pathlib, shutil; from temporaldb.localpg import LocalPaths; \
	  area = LocalPaths.for_project(pathlib.Path.cwd()).area.parent; \
	  area.name.startswith("temporaldb-") and shutil.rmtree(area, ignore_errors=True)'
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
