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

# The main job on the embedded default (SQLite + a local folder): one harvest
# cycle of the vault's feeds (a new vault gets a starter set of real public
# feeds). Exit 3 = every feed failed (e.g. no network); the vault stays intact.
run: $(BIN)/echoctl
	@test -d $(VAULT) || $(BIN)/echoctl init $(VAULT)
	$(BIN)/echoctl --vault $(VAULT) harvest

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
