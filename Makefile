# Datapunk Lake. `make demo` and `make test` each do all the set-up they need, idempotently:
# system packages and extensions (docker/setup-debian.sh, as root), a virtualenv with the
# project, the embedded PostgreSQL + Redis, and the migrations. A second run is fast.

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LAKE := $(BIN)/lake
# sql/ in manifest order: pgspot --append checks them as the one script they are.
SQL_FILES := $(addprefix sql/,$(shell grep -v '^\#' sql/manifest.txt 2>/dev/null))

.DEFAULT_GOAL := help
.PHONY: help setup system venv up down status migrate demo test test-fast bench bench-pii bench-formats bench-governance bench-retention bench-bridge bench-writes bench-export bench-grpc bench-ha proto lint psql clean bench-vectors bench-tls bench-history bench-places bench-replica

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

system:  ## install PostgreSQL, its extensions and Redis (Debian 12/13; needs root)
	@bash docker/setup-debian.sh

venv: $(VENV)/.installed  ## create .venv with the project and its dev tools

# PL/Python imports Debian's jsonschema and fastjsonschema (the system Python's): the venv gets
# the same versions, so that the tests test what the server runs (tests/test_plpython_env.py).
# The stamp changes when Debian's versions do, and the venv is brought along.
SYSTEM_PINS = $(shell /usr/bin/python3 -c 'from importlib.metadata import version as v; \
	print(*(f"{p}=={v(p)}" for p in ("jsonschema", "fastjsonschema")))' 2>/dev/null)

$(VENV)/.installed: pyproject.toml $(VENV)/.system-pins
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "setup: installing the project into $(VENV)…"
	@$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]' \
		$$(cat $(VENV)/.system-pins)
	@touch $@

$(VENV)/.system-pins: FORCE
	@mkdir -p $(VENV)
	@test -n '$(SYSTEM_PINS)' || echo "setup: warning: the system Python lacks jsonschema or" \
		"fastjsonschema (run make system): the venv takes PyPI's newest" >&2
	@echo '$(SYSTEM_PINS)' | cmp -s - $@ || echo '$(SYSTEM_PINS)' > $@

FORCE:

setup: system venv  ## everything above

up: setup  ## start the embedded PostgreSQL and Redis
	@$(LAKE) up

down:  ## stop them
	@test -x $(LAKE) && $(LAKE) down || true

status:  ## what runs where
	@$(LAKE) status

migrate: up  ## bring the lake's database to the latest schema
	@$(LAKE) migrate

psql: up  ## psql on the lake's database
	@$(LAKE) psql

demo: migrate  ## ingest 100 000 generated location records and show what happened
	@$(LAKE) demo

test: setup  ## run the test suite against a real PostgreSQL and Redis
	@$(LAKE) up >/dev/null
	@$(BIN)/pytest

test-fast: venv  ## the tests that need no server (marked fast), in seconds
	@$(BIN)/pytest -m fast

bench: migrate  ## ingest benchmark: 1 000 000 records, ratios to one-session raw COPY (per session; lake ingest's sessions)
	@$(BIN)/python bench/ingest.py

bench-pii: migrate  ## PII pre-filter: µs a row on the ingest bench's data, against entering Python
	@$(BIN)/python bench/pii_prefilter.py

bench-formats: migrate  ## Takeout Records.json (1 M locations) with conversion, ratio to JSON Lines
	@$(BIN)/python bench/formats.py $(BENCH_ARGS)

bench-governance: migrate  ## RLS overhead and audited UPDATE throughput
	@$(BIN)/python bench/governance.py

bench-retention: migrate  ## retention: drop time of a 10 k and a 1 M row month, archive time
	@$(BIN)/python bench/retention.py

bench-bridge: migrate  ## change latency commit -> bridge -> Redis subscriber, beside raw NOTIFY
	@$(BIN)/python bench/bridge.py

bench-writes: migrate  ## concurrent validated single-row writes vs a plain table (SECONDS=10)
	@$(BIN)/python bench/writes.py --seconds $(or $(SECONDS),10)

bench-vectors: migrate  ## similar() under RLS on 1 M vectors of 384 dims, 100 users: recall@10, p50/p99 (builds once, then reuses lake_bench_vectors)
	@$(BIN)/python bench/vectors.py $(BENCH_ARGS)

bench-history: up  ## the lake's figure history: plain table, monthly partitions or hypertable on 1 M samples
	@$(BIN)/python bench/history.py $(BENCH_ARGS)
bench-places: migrate  ## declared coordinates' cost at ingest (100 000 demo records) and near / within latency
	@$(BIN)/python bench/places.py $(BENCH_ARGS)

bench-export: migrate  ## a person's export of 1 000 000 records: records/s, ratio to COPY TO STDOUT
	@$(BIN)/python bench/export.py

bench-tls: migrate  ## 1 000 000 records over TLS 1.3 as a ratio to the socket; connection set-up with TLS and mTLS
	@$(BIN)/python bench/tls.py $(BENCH_ARGS)

bench-grpc: migrate  ## 1 000 000 records through `lake grpc` as a ratio to `lake ingest`; Query p50/p99
	@$(BIN)/python bench/grpc_bench.py $(BENCH_ARGS)

bench-ha: venv  ## backup and restore throughput (pgBackRest) against tar (ROWS=1000000); synchronous replication against one server, replica lag, failover time (SECONDS=10)
	@$(BIN)/python bench/backup.py --rows $(or $(ROWS),1000000)
	@$(BIN)/python bench/ha.py --seconds $(or $(SECONDS),10)

bench-replica: migrate  ## replica lag at steady write rates: commit -> visible on a streaming standby, replay_lag (SECONDS=10)
	@$(BIN)/python bench/replica_lag.py --seconds $(or $(SECONDS),10)

proto: venv  ## compile proto/ into lake_client/lakepb again (after editing the .proto)
	@$(BIN)/python proto/generate.py

lint: venv  ## ruff, mypy and pgspot
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy
	@# lake.run_maintenance and lake.apply_retention commit, which PostgreSQL forbids with a SET
	@# search_path: they qualify every name instead (see sql/jobs/run_maintenance.sql).
	@$(BIN)/pgspot --append --ignore-lang plpython3u \
		--proc-without-search-path "lake.run_maintenance(job text,now timestamptz)" \
		--proc-without-search-path "lake.apply_retention(now timestamptz,INOUT report jsonb)" \
		$(SQL_FILES)

clean: down  ## stop everything and delete the embedded cluster's data
	rm -rf .lake
