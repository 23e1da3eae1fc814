# qart developer entry points. `make run` serves the site on http://127.0.0.1:8000/, `make test` runs lint and the
# suite on PostgreSQL and on SQLite. Both build .venv first (instant when the requirements files are unchanged).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
STAMP := $(VENV)/.stamp
REQUIREMENTS := requirements.txt requirements-dev.txt requirements-nodeps.txt

# make test PYTEST_ARGS="-k demo -x"
PYTEST_ARGS ?=
export PYTEST_ARGS

.PHONY: help venv run test lint clean distclean

help:
	@echo "make venv       create/update .venv from the requirements files"
	@echo "make run        migrate, then serve redis + an RQ worker + the site on http://127.0.0.1:8000/ (Ctrl-C stops)"
	@echo "make test       ruff, then pytest on a throwaway PostgreSQL and again on SQLite (PYTEST_ARGS=... passes on)"
	@echo "make lint       ruff check ."
	@echo "make clean      remove caches and collected static files"
	@echo "make distclean  clean, and remove .venv and var/ (the SQLite database and media too)"

venv: $(STAMP)
	@:

$(STAMP): $(REQUIREMENTS)
	@scripts/venv.sh
	@touch $@

run: venv
	@scripts/run.sh

test: venv
	@scripts/test.sh

lint: venv
	$(VENV)/bin/ruff check .

clean:
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache var/static var/log

distclean: clean
	rm -rf $(VENV) var
