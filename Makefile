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

.PHONY: help venv run test test-fast lint bench clean distclean

help:
	@echo "make venv       create/update .venv from the requirements files"
	@echo "make run        migrate, then serve redis, the RQ workers, the scan drainer and the site on http://127.0.0.1:8000/ (Ctrl-C stops)"
	@echo "make test       ruff, then pytest on a throwaway PostgreSQL and on SQLite side by side (PYTEST_ARGS=..., SERIAL=1)"
	@echo "make test-fast  ruff, then pytest on SQLite without the worker-process and browser tests (the quick loop)"
	@echo "make lint       ruff check ."
	@echo "make bench      calibrate the scan verifier and measure its speed (CPU; see bench/RESULTS.md)"
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

test-fast: venv
	@FAST=1 scripts/test.sh

lint: venv
	$(VENV)/bin/ruff check .

# scikit-image (requirements-nodeps.txt) is installed for its sample photos only: the calibration blends codes into them.
bench: venv
	$(VENV)/bin/python bench/calibrate_verifier.py --per-family 100 --near 240

clean:
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache var/static var/log

distclean: clean
	rm -rf $(VENV) var
