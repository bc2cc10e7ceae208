# Two entry points: `make run` (the seed's model on the embedded defaults) and `make test`.
# Both build .venv on first use; nothing else needs to be installed beyond python3 and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-fast lint typecheck bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

# Prefect's temporary API server (none is configured on a fresh machine) gets 90 s to start
# instead of 20: its first start migrates a new database, slow on a small, busy machine.
run: $(STAMP)
	@mkdir -p .runs
	cd .runs && PREFECT_SERVER_ANALYTICS_ENABLED=$${PREFECT_SERVER_ANALYTICS_ENABLED:-false} \
		PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=$${PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS:-90} \
		../$(BIN)/python ../examples/running_in_parallel/hello_ray.py ray 20

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# `make test` runs the tests on two pytest-xdist workers (TEST_WORKERS=2; 0 runs them one
# after another). They share one Prefect server; each has its own Ray. A module whose tests
# share a server or cluster stays on one worker (`pytest_xdist_make_scheduler` in
# tests/conftest.py), and a `timing` test, whose bound is close to what it measures, runs
# while the other worker waits (`pytest_runtest_protocol` there).
TEST_WORKERS ?= 2

test: lint typecheck
	$(BIN)/pytest -n $(TEST_WORKERS)

# The edit-test loop: ruff and the unit tests (no Prefect API, no Ray, no process of their
# own: about 25 s). `pytest -n 2 -m "not ray and not slow"` adds the Prefect API's tests
# that start neither Ray nor a process (about a minute, 10 s of it the server's start).
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 2 -m "not ray and not slow" tests/unit

bench: $(STAMP)
	$(BIN)/python bench/chain.py

clean:
	rm -rf $(VENV) .runs .pytest_cache .mypy_cache .ruff_cache .hypothesis
