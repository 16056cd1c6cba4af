# The README's two commands: `make bench` (the main job) and `make test` (the test suite).
# Both set up .venv first (scripts/setup.sh), so they work on a fresh clone.
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup test bench

setup:
	GRADI_VENV=$(VENV) bash scripts/setup.sh

test: setup
	$(BIN)/pytest

bench: setup
	$(BIN)/gradi backends
	$(BIN)/gradi solve --shape sphere -n 100 --backend numpy
