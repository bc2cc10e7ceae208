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

run: $(STAMP)
	@mkdir -p .runs
	cd .runs && PREFECT_SERVER_ANALYTICS_ENABLED=$${PREFECT_SERVER_ANALYTICS_ENABLED:-false} \
		../$(BIN)/python ../examples/running_in_parallel/hello_ray.py ray 20

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# `make test` runs the tests one after another (TEST_WORKERS=0): on two cores, parallel
# workers cut its time to about 5 minutes but lose the timing the Ray and cancellation tests
# check. `make test TEST_WORKERS=2` runs it on two pytest-xdist workers, each with its own Ray
# and Prefect test API; a module whose tests share a server or cluster stays on one worker
# (see `pytest_xdist_make_scheduler` in tests/conftest.py). `make test-fast` uses two.
TEST_WORKERS ?= 0

test: lint typecheck
	$(BIN)/pytest -n $(TEST_WORKERS)

# The edit-test loop: ruff and every test that starts neither Ray nor a process of its own.
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -n 2 -m "not ray and not slow"

bench: $(STAMP)
	$(BIN)/python bench/chain.py

clean:
	rm -rf $(VENV) .runs .pytest_cache .mypy_cache .ruff_cache .hypothesis
