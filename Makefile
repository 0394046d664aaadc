# One-command entry points. Each target creates .venv itself if needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint bench clean browser

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

clean:
	rm -rf $(VENV) .noetl .pytest_cache .mypy_cache .ruff_cache
