# The README's two commands: `make bench` (the main job) and `make test` (the test suite).
# Both set up .venv first (scripts/setup.sh), so they work on a fresh clone.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup test bench bench-full

setup:
	GRADI_VENV=$(VENV) bash scripts/setup.sh

test: setup
	$(BIN)/ruff check .
	$(BIN)/pytest

bench: setup
	$(BIN)/gradi backends
	$(BIN)/gradi bench --quick --out results/bench-quick
	GRADI_VENV=$(VENV) bash scripts/asv-local.sh --quick

bench-full: setup
	$(BIN)/gradi bench --out results/bench-full
