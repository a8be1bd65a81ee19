# linli — the two commands a newcomer needs:
#   make demo   create .venv, install, start embedded PostgreSQL + MQTT, migrate, seed, serve
#   make test   the whole test suite (real PostgreSQL and MQTT; embedded unless configured)

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LINLI := $(VENV)/bin/linli
# Reinstall only when pyproject.toml changes (pip on every `make demo` costs seconds).
STAMP := $(VENV)/.linli-installed
# Parallel test processes; on the 2-core CI machine 3 beat 2 and "auto" (tests wait on
# PostgreSQL much of the time). Override: make test PYTEST_WORKERS=auto
PYTEST_WORKERS ?= 3
PYTEST_ARGS ?=
NAME ?= api-read
BENCH_ARGS ?= --json

# Browser for the Playwright tests (target `browser`), from the web-shell work.
include mk/browser.mk

.PHONY: install demo serve test lint typecheck check bench bench-tools clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --disable-pip-version-check -q -e '.[dev]'
	touch $@

install: $(STAMP)

demo: install
	$(LINLI) demo

serve: install
	$(LINLI) serve --with-worker

# pytest exits 5 when it collected no test: that is a failure here, never a pass.
test: install
	@$(MAKE) --no-print-directory browser
	@status=0; $(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS) || status=$$?; \
	if [ $$status -eq 5 ]; then echo "error: pytest ran no test" >&2; exit 1; fi; \
	exit $$status

lint: install
	$(VENV)/bin/ruff check linli tests bench

typecheck: install
	$(VENV)/bin/mypy

check: lint typecheck test

# wrk gives the api-read benchmark its load; without it a Python load generator is used.
bench-tools:
	@if command -v wrk >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk; }; \
	else echo "wrk is not installed (needs root): benchmarks fall back to a Python load generator"; fi

bench: install bench-tools
	$(LINLI) bench $(NAME) $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)
