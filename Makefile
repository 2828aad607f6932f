# The two commands a newcomer needs: `make run` and `make test`. Both build the virtualenv first.
# Variables given to make reach the demo: `make run SMARTPLEX_API_PORT=8800 SMARTPLEX_DAGSTER_PORT=3300`;
# its options go in DEMO_ARGS: `make run DEMO_ARGS="--size 500"`.
PYTHON ?= python3
DEMO_ARGS ?=
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench-cluster bench-ingest bench-sync bench-storm bench-tick bench-status bench-memory bench-home bench-overhead bench-faults bench-restart bench-catch-up clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/smartplex demo $(DEMO_ARGS)

test: $(STAMP)
	$(BIN)/pytest

# What CI checks before the tests: ruff's lint and format, and mypy (strict on every package).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench-ingest: $(STAMP)
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV)

bench-sync: $(STAMP)
	$(BIN)/python bench/sync_full_refresh.py

bench-storm: $(STAMP)
	$(BIN)/python bench/storm.py

bench-tick: $(STAMP)
	$(BIN)/python bench/sensor_tick.py

bench-status: $(STAMP)
	$(BIN)/python bench/status_at_scale.py

bench-memory: $(STAMP)
	$(BIN)/python bench/client_memory.py

bench-home: $(STAMP)
	$(BIN)/python bench/home_server.py

bench-overhead: $(STAMP)
	$(BIN)/python bench/run_overhead.py

bench-cluster: $(STAMP)
	$(BIN)/python bench/cluster.py

bench-faults: $(STAMP)
	$(BIN)/python bench/database_faults.py

bench-catch-up: $(STAMP)
	$(BIN)/python bench/catch_up.py

bench-restart: $(STAMP)
	$(BIN)/python bench/postgres_restart.py
