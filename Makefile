# ECHO: every target creates .venv on a fresh machine and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
VAULT  ?= ./vault

.PHONY: run test test-fast lint bench clean

$(BIN)/echoctl: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $(BIN)/echoctl

# The main job on the embedded default (SQLite + a local folder): the service,
# `echoctl serve` (a new vault gets a starter set of real public feeds): it
# harvests the due feeds at once, then on schedule, and prints where it
# listens (http://127.0.0.1:8383: /healthz /readyz /metrics /status). Ctrl-C stops it.
run: $(BIN)/echoctl
	@test -d $(VAULT) || $(BIN)/echoctl init $(VAULT)
	$(BIN)/echoctl --vault $(VAULT) serve

# The whole suite: lint, types, layers (import-linter contracts in pyproject.toml), tests.
test: $(BIN)/echoctl
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest -q

# Everyday runs: every test not marked slow (no lint), on two worker processes
# (pytest-xdist): about 40 s on an idle 2-core machine.
test-fast: $(BIN)/echoctl
	$(BIN)/pytest -q -n 2 -m 'not slow'

lint: $(BIN)/echoctl
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

# Benchmarks (figures go in the closing note); ITEMS scales the vault size.
bench: $(BIN)/echoctl
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
