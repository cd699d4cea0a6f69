# Two commands for a newcomer: `make demo` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export FEEDBACK_HOME ?= $(CURDIR)/.feedback
export DAGSTER_HOME  ?= $(FEEDBACK_HOME)/dagster
export GX_ANALYTICS_ENABLED ?= false

.PHONY: demo test up install install-test chromium wrk check-defs bench clean

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

## test: install what the tests need (Debian's chromium included, when root), then run pytest
test: install-test chromium check-defs
	$(BIN)/python -m pytest

## up: the Dagster UI (DAGSTER_PORT, default 3000) and daemon, with DAGSTER_HOME under FEEDBACK_HOME so
##     state survives restarts, and the Review App (REVIEW_APP_PORT, default 8000); Ctrl-C or SIGTERM stops
##     both (Dagster gets UP_STOP_SECONDS to shut down, then its process group is killed)
DAGSTER_PORT ?= 3000
REVIEW_APP_PORT ?= 8000
UP_STOP_SECONDS ?= 10
up: install
	@$(BIN)/python -c "from feedback_pipeline.home import FeedbackHome; FeedbackHome.from_env().ensure_dagster_home()"
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

wrk:
	@if command -v wrk >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	else echo "note: wrk is missing (apt-get install wrk); the Review App benchmark will say so"; fi

check-defs: install
	@$(BIN)/python -c "from feedback_pipeline.home import FeedbackHome; FeedbackHome.from_env().ensure_dagster_home()"
	$(BIN)/dagster definitions validate -w workspace.yaml

clean:
	rm -rf $(VENV) .feedback .pytest_cache
