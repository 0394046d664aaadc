# One-command entry points. Each target creates .venv itself if needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench bench-peers clean browser

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all,dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	NOETL_HOME=$${NOETL_HOME:-.noetl} $(BIN)/noetl run examples/hello_world.yaml

test: $(STAMP)
	$(BIN)/pytest -q

# The UI tests (tests/ui) drive Debian's Chromium through Playwright (never `playwright install`).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench: $(STAMP)
	$(BIN)/python -m bench --write docs/benchmarks.md

# NoETL distributed side by side with Celery (bench/peers.py): Celery and its Redis client in
# their own virtual environment; Redis itself must run (NOETL_BENCH_REDIS_URL, default
# redis://127.0.0.1:6379/12), PostgreSQL too (NOETL_TEST_POSTGRES_URL).
PEERS_VENV := bench/.peers-venv
PEERS_STAMP := $(PEERS_VENV)/.installed

$(PEERS_STAMP): bench/peers-requirements.txt
	$(PY) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install --quiet --upgrade pip
	$(PEERS_VENV)/bin/pip install --quiet -r bench/peers-requirements.txt
	touch $(PEERS_STAMP)

bench-peers: $(STAMP) $(PEERS_STAMP)
	$(BIN)/python -m bench.peers --write docs/benchmarks.md

clean:
	rm -rf $(VENV) $(PEERS_VENV) .noetl .pytest_cache .mypy_cache .ruff_cache
