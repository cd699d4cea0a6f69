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

## up: the Dagster UI and daemon, with DAGSTER_HOME under FEEDBACK_HOME so state survives restarts,
##     and the Review App (REVIEW_APP_PORT, default 8000) in the background, stopped with them
REVIEW_APP_PORT ?= 8000
up: install
	@$(BIN)/python -c "from feedback_pipeline.home import FeedbackHome; FeedbackHome.from_env().ensure_dagster_home()"
	@$(BIN)/feedback-pipeline review-app --port $(REVIEW_APP_PORT) & review_app=$$!; \
	  trap 'kill $$review_app 2>/dev/null' EXIT INT TERM; \
	  echo "Review App: http://127.0.0.1:$(REVIEW_APP_PORT) (invite reviewers: $(BIN)/feedback-pipeline reviewers invite EMAIL)"; \
	  $(BIN)/dagster dev -w workspace.yaml

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
