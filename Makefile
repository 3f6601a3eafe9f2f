# The two commands a newcomer needs: `make demo` and `make test`. Everything else is what they build on.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_PORT ?= 8000

.PHONY: demo test lint install install-test system-deps dashboard real-clients bench

demo: install dashboard
	$(BIN)/ccproxy demo --port $(DEMO_PORT)

test: lint system-deps dashboard real-clients
	$(BIN)/pytest

# Lint, formatting and types (configured in pyproject.toml); `make test` runs this first.
lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

install: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Debian packages the tests use: a real Pushgateway, Prometheus (+promtool), Alertmanager, Chromium for the dashboard, ClickHouse.
system-deps:
	scripts/install-system-deps.sh

# Bundles the dashboard's charting library from the npm registry into the Python package.
dashboard:
	scripts/install-system-deps.sh build
	cd dashboard-ui && npm ci --no-audit --no-fund && npm run build

# Claude Code and Codex CLI, pinned, for the end-to-end tests that drive them through ccproxy offline.
real-clients:
	scripts/install-system-deps.sh build
	cd real-clients && npm ci --no-audit --no-fund

bench: install-test
	scripts/install-system-deps.sh bench
	$(BIN)/python benchmarks/bench_goals.py
