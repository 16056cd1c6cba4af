# The README's two commands: `make bench` (the main job) and `make test` (the test suite).
# Both set up .venv first (scripts/setup.sh), so they work on a fresh clone; a second run with
# nothing changed skips the reinstall and the C++ build. `make test` runs the tests exactly as
# CI does (scripts/run-tests.sh, which scripts/test-wheel.sh also ends in: ruff, then pytest).
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup test bench bench-full

setup:
	GRADI_VENV=$(VENV) bash scripts/setup.sh

test: setup
	PYTHON=$(BIN)/python bash scripts/run-tests.sh

bench: setup
	$(BIN)/gradi backends
	$(BIN)/gradi bench --quick --out results/bench-quick
	GRADI_VENV=$(VENV) bash scripts/asv-local.sh --quick

bench-full: setup
	$(BIN)/gradi bench --out results/bench-full
