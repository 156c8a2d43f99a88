# One-command entry points. Every target builds .venv first when needed.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PIP_FLAGS := --disable-pip-version-check --no-input
ARGS ?=
PIPELINE ?= captcha

.PHONY: install pipeline serve validate test test-fast screenshots lint coverage format tensorboard bench freeze clean help flink-up flink-down flink-status

help:
	@echo "make pipeline   run the captcha pipeline end to end (ARGS='--quick' for a short run; PIPELINE=mnist|house_price for another)"
	@echo "make test       the whole test suite (what CI runs) with line coverage, slow files first"
	@echo "make test-fast  the suite without the slow tests (trained runs, Flink, MariaDB): the edit loop"
	@echo "make screenshots the README's page screenshots, from the browser tests (docs/screenshots/)"
	@echo "make lint       ruff (lint and format check) and mypy, as CI runs them; make format fixes what it can"
	@echo "make coverage   the whole suite with line coverage per module (htmlcov/)"
	@echo "make tensorboard TensorBoard over runs/ (PORT=6006)"
	@echo "make validate   DATA=file.csv SCHEMA=schemas/house_price/schema.pbtxt"
	@echo "make serve      model server + demo frontend over serving_models/ (REPLICAS=N: N server processes)"
	@echo "make bench      benchmarks, side by side with their baselines"
	@echo "make install    build .venv from constraints.txt (idempotent)"
	@echo "make flink-up   a Flink session cluster on 127.0.0.1 for ARGS='--runner flink' (needs Java 17 and Maven)"
	@echo "make flink-down stop everything flink-up started"

# The stamp is newer than constraints.txt and pyproject.toml once an install
# succeeded, so a second `make install` does nothing.
$(STAMP): constraints.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (found " + sys.version.split()[0] + "); set PYTHON=/path/to/python3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install $(PIP_FLAGS) -q --upgrade pip==24.3.1 setuptools==75.6.0 wheel==0.45.1
	$(PY) -m pip install $(PIP_FLAGS) -c constraints.txt -e '.[dev]'
	$(PY) -m pip check
	@touch $(STAMP)

install: $(STAMP)

pipeline: $(STAMP)
	$(PY) -m pipelines run $(PIPELINE) $(ARGS)

serve: $(STAMP)
	$(PY) -m serving $(if $(REPLICAS),--replicas $(REPLICAS)) $(ARGS)

validate: $(STAMP)
	@if [ -z "$(DATA)" ] || [ -z "$(SCHEMA)" ]; then echo "usage: make validate DATA=file.csv SCHEMA=schemas/<pipeline>/schema.pbtxt" >&2; exit 2; fi
	$(PY) -m pipelines validate --data "$(DATA)" --schema "$(SCHEMA)" $(ARGS)

# One pass over the whole suite in random order (the seed is printed; SEED=N repeats an order), TEST_JOBS
# test files at a time (pytest-xdist; a test file stays on one worker; much of a test's time is waiting
# for a server, a cluster or a subprocess, so more workers than cores keep the cores busy). The files
# with slow tests (trained runs, Flink, MariaDB) start first so that the many short files fill in around
# them (tests/conftest.py: SlowFilesFirst). Line coverage of everything the tests run is printed and held
# at COVERAGE_MIN percent or more: the servers and pipelines the tests not marked slow start as
# subprocesses are traced too; a slow test's subprocesses run untraced (tests/conftest.py).
# With ARGS naming some tests, selecting none of them is no failure and the floor is off.
COVERAGE_MIN := 75
TEST_JOBS ?= 3
ifeq ($(origin SEED),undefined)
SEED := $(shell echo $$((RANDOM * 32768 + RANDOM)))
endif
PARALLEL := $(if $(filter-out 0 1,$(TEST_JOBS)),-n $(TEST_JOBS) --dist loadfile --no-loadscope-reorder)

test: $(STAMP)
	@echo "test order seed: $(SEED) (make test SEED=$(SEED) repeats it)"
	$(PY) -m pytest $(PARALLEL) --random-order-bucket=module --random-order-seed=$(SEED) \
		--durations=10 --cpu-files=10 --cov --cov-report=term $(if $(ARGS),,--cov-fail-under=$(COVERAGE_MIN)) $(ARGS) || [ $$? -eq 5 ]

# The edit loop: everything but the tests marked slow (a trained pipeline run, a Flink cluster,
# MariaDB; tests/conftest.py marks them), in random order too.
test-fast: $(STAMP)
	@echo "test order seed: $(SEED)"
	$(PY) -m pytest $(PARALLEL) --random-order-bucket=module --random-order-seed=$(SEED) -m "not slow" \
		--durations=10 --cpu-files=10 $(ARGS)

# The README's screenshots: the browser tests save every page to reports/ (full height); they are
# scaled to 900 pixels wide into docs/screenshots/. Needs chromium and chromium-driver.
screenshots: $(STAMP)
	$(PY) -m pytest -p no:random_order -k browser tests/serving/test_make_serve.py \
		tests/serving/frontend/test_mnist_page.py tests/pipelines/test_compare_runs.py $(ARGS)
	$(PY) -m tests.browser docs/screenshots

# Static checks: ruff's rules and formatting over the tree, mypy where the contracts live
# (annotations required for the component contracts and the runner; see [tool.mypy] in pyproject.toml).
MYPY_PATHS := components/base/artifacts.py components/base/component.py components/base/executor.py \
	components/base/functions.py components/base/interrupt.py pipelines/cache.py pipelines/runner.py serving/layout.py serving/model_server

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(MYPY_PATHS)

# Line coverage of the whole suite, slow tests included (subprocesses traced too; [tool.coverage] in
# pyproject.toml), with an HTML report in htmlcov/. Tracing makes the tests take about 1.4-1.5 times
# as long (Python 3.11's settrace; BENCHMARKS.md, "Coverage's cost").
coverage: $(STAMP)
	$(PY) -m pytest --random-order-bucket=module --cov --cov-report=term --cov-report=html $(ARGS)

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# TensorBoard over every run's training logs (runs/<pipeline>/Trainer/<id>/model/logs), on 127.0.0.1.
tensorboard: $(STAMP)
	$(VENV)/bin/tensorboard --logdir runs --host 127.0.0.1 --port $(or $(PORT),6006)

bench: $(STAMP)
	$(PY) -m bench $(ARGS)

# A Flink session cluster (JobManager, 2 TaskManagers, Beam's job server and worker pool) on 127.0.0.1.
flink-up: $(STAMP)
	$(PY) -m cluster.flink up $(ARGS)

flink-down:
	@if [ -x $(PY) ]; then $(PY) -m cluster.flink down; else $(PYTHON) -m cluster.flink down; fi

flink-status: $(STAMP)
	$(PY) -m cluster.flink status

freeze: $(STAMP)
	$(PY) -m pip freeze --exclude-editable

clean:
	rm -rf runs serving_models serving_logs reports bench_out .pytest_cache htmlcov .coverage .coverage.*
