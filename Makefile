# Two commands matter: `make dev` (the whole stack) and `make test` (what CI runs).
# Everything runs from $(VENV)/bin: no activated virtualenv is needed or assumed.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Two installs: what running needs (`make dev`), and that plus the test tools (`make test`).
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test
# The OpenID Connect provider the tests and `make dev` start (tools/oidc, node 20+).
OP_STAMP   := tools/oidc/node_modules/.installed
DATA   ?= .data

# Values for checking docker-compose.yml only; a real deployment sets its own.
COMPOSE_CHECK_ENV := APPROVALS_TOKEN_SECRET=compose-config-check-0123456789abcdef \
                     APPROVALS_SIGNING_SECRET=compose-config-check-signing-0123456789 \
                     POSTGRES_PASSWORD=compose-config-check \
                     APPROVALS_PUBLIC_BASE_URL=https://approvals.example.com \
                     APPROVALS_PAYLOAD_KEYS=check:Y29tcG9zZS1jb25maWctY2hlY2sta2V5LTAxMjM0NTY=

.DEFAULT_GOAL := help
.PHONY: help install dev test test-fast lint fmt compose-check chromium-check clean bench bench-seed record-histories bench-bulk bench-sla bench-plans

help:
	@echo "make dev    run the whole stack locally (PostgreSQL, Temporal, worker, API); Ctrl-C stops it"
	@echo "make install  the virtualenv with the test tools (make dev installs only what running needs)"
	@echo "make test   lint, type-check, validate docker-compose.yml, run every test, browser tests too (what CI runs)"
	@echo "make test-fast  the pure tests only (marker unit: domain rules, policies, rendering), no server"
	@echo "make lint   ruff check, ruff format --check, mypy, the import-linter contracts (layers)"
	@echo "make fmt    ruff --fix and ruff format"
	@echo "make clean  delete $(DATA)/ (database, Temporal history, logs) and tool caches, without asking"
	@echo "make bench       the dev stack as separate processes: throughput, latency, CPU per process, beside a bare-Temporal floor"
	@echo "make bench-seed  bench-sla, then open 20,000 requests, time inbox, list, an old decision; worker RSS"
	@echo "make bench-bulk  submit 100 contracts on the dev stack, time one bulk approve of all 100"
	@echo "make bench-sla   seed 100,000 requests into the read-model, time the SLA report's queries"
	@echo "make bench-plans seed 100,000 requests, time the API's hot reads with and without generic plans"
	@echo "make chaos       kill every process of the dev stack in turn under load; check nothing was lost or doubled"
	@echo "make record-histories  add this code's workflow histories to tests/histories (before changing workflows/)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml is newer than the stamp (or the venv is new).
# `make dev` installs the service alone (no pytest, mypy, playwright, schemathesis);
# the test install holds everything the run install does, so it stamps both.
$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e .
	touch $(RUN_STAMP)

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[test]'
	touch $(TEST_STAMP) $(RUN_STAMP)

$(OP_STAMP): tools/oidc/package.json tools/oidc/package-lock.json
	cd tools/oidc && npm ci --no-audit --no-fund
	touch $(OP_STAMP)

install: $(TEST_STAMP) $(OP_STAMP)

dev: $(RUN_STAMP)
	$(BIN)/approvals dev

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

fmt: $(TEST_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

compose-check:
	@if ! command -v docker-compose >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "docker-compose is missing: installing it from Debian's packages"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a \
	      apt-get install -y -qq docker-compose; } >/tmp/approvals-apt.log 2>&1 \
	      || { cat /tmp/approvals-apt.log >&2; exit 1; }; \
	  else \
	    echo "docker-compose is missing and this is not root: install it (sudo apt-get install docker-compose) and re-run" >&2; \
	    exit 1; \
	  fi; \
	fi
	$(COMPOSE_CHECK_ENV) docker-compose config -q

# The browser tests (tests/web) drive Debian's chromium through Playwright; Playwright's
# own browser download (`playwright install`) is never used.
chromium-check:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "chromium is missing: installing it from Debian's packages (for tests/web)"; \
	    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a \
	      apt-get install -y -qq chromium; } >/tmp/approvals-apt.log 2>&1 \
	      || { cat /tmp/approvals-apt.log >&2; exit 1; }; \
	  else \
	    echo "chromium is missing and this is not root: install it (sudo apt-get install chromium) and re-run; the browser tests in tests/web need it" >&2; \
	    exit 1; \
	  fi; \
	fi

test: $(TEST_STAMP) $(OP_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports
	$(MAKE) --no-print-directory compose-check
	$(MAKE) --no-print-directory chromium-check
	$(BIN)/pytest

# The pure tier (tests/conftest.py gives every test a tier: unit, process, db, temporal,
# browser); `make test` runs them all.
# The folders left out start whole stacks or a browser: no unit test lives there.
test-fast: $(TEST_STAMP)
	APPROVALS_FAST_TESTS=1 $(BIN)/pytest -q -m unit --ignore=tests/web --ignore=tests/bench --ignore=tests/cli

# Refuses while `approvals dev` runs on $(DATA); otherwise deletes without asking.
clean:
	@if [ -f $(DATA)/run/dev.pid ] && $(PYTHON) -c 'import json,os,sys; os.kill(json.load(open(sys.argv[1]))["pid"], 0)' $(DATA)/run/dev.pid 2>/dev/null; then \
	  echo "approvals dev is running on $(DATA): stop it (Ctrl-C) before make clean" >&2; exit 1; \
	fi
	rm -rf $(DATA) .pytest_cache .mypy_cache .ruff_cache build

# Throughput, latency and CPU per process of the project as deployed (`approvals dev` started
# for the run in a temporary directory on free ports: API, worker, Temporal, PostgreSQL... as
# separate processes, stopped at the end), beside the floor (the same shape on bare Temporal)
# with the ratios; figures, never a pass/fail (exit 1: a request failed).
# More options: make bench BENCH_ARGS="--requests 50 --concurrency 4" (or --no-floor,
# --floor-only, --serial-requests N, --in-process: all in this one Python process,
# --api-url URL --token-file .data/dev.env: a `make dev` you started).
bench: $(TEST_STAMP)
	$(BIN)/python -m bench.api_throughput $(BENCH_ARGS)

# Add the histories of this code's test scenarios to tests/histories (one per shape;
# never replaces a stored one). Run before changing workflow code, commit the new files.
record-histories: $(TEST_STAMP)
	APPROVALS_RECORD_HISTORIES=tests/histories $(BIN)/pytest -q tests/workflows tests/api tests/notify/test_dispatcher.py

# Open many requests for real, then measure with them open. Takes long: on 2 busy cores the
# worker opens about 10 requests a second (20,000 in about half an hour). More options: make bench-seed SEED_ARGS="--count 2000"
# (or --max-cached-workflows N, --api-url http://127.0.0.1:8000 --token-file .data/dev.env).
bench-seed: $(TEST_STAMP)
	$(BIN)/python -m bench.sla $(SLA_ARGS)
	$(BIN)/python -m bench.seed $(SEED_ARGS)

# The SLA report's queries at 100,000 requests (read-model rows written in bulk, a
# throwaway database; under a minute). More options: make bench-sla SLA_ARGS="--count 20000 --runs 9"
bench-sla: $(TEST_STAMP)
	$(BIN)/python -m bench.sla $(SLA_ARGS)

# The API's hot reads (inbox, lists, search, audit trail, deliveries) at 100,000 requests,
# ten runs on one connection with and without generic plans (a throwaway database; about a
# minute). More options: make bench-plans PLANS_ARGS="--count 20000 --runs 12"
bench-plans: $(TEST_STAMP)
	$(BIN)/python -m bench.plans $(PLANS_ARGS)

# One bulk decision of 100 requests on the dev stack (started as `make bench` starts it):
# submits 100 contracts, then times one POST /v1/decisions/bulk approving all of them.
# More options: make bench-bulk BULK_ARGS="--requests 50" (or --in-process, --api-url URL).
bench-bulk: $(TEST_STAMP)
	$(BIN)/python -m bench.bulk $(BULK_ARGS)

# axe-core for the accessibility scans of the web pages (tools/axe; node 18+, from npm).
AXE_STAMP := tools/axe/node_modules/.installed
$(AXE_STAMP): tools/axe/package.json tools/axe/package-lock.json
	cd tools/axe && npm ci --no-audit --no-fund
	touch $(AXE_STAMP)
install: $(AXE_STAMP)
test: $(AXE_STAMP)

# The chaos drill (docs/operations.md, "The chaos drill"): `approvals dev` started as for
# `make bench`, a bounded load through the API while the worker, the deliverer, the API,
# Temporal and PostgreSQL are each killed with SIGKILL in turn; prints each one's time to
# recover and checks that nothing was lost or doubled (exit 1 if a check fails).
# More options: make chaos CHAOS_ARGS="--requests 60 --kill worker,api --spacing 20"
.PHONY: chaos
chaos: $(TEST_STAMP)
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)
