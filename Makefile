# readmit-kedro: every target sets up what it needs, so a fresh clone needs only Python 3.11+ and Java 17.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Patient data: nothing phones home (also enforced by .telemetry and settings.py).
export KEDRO_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := 1
export PYSPARK_PYTHON := $(abspath $(PY))
export SPARK_LOCAL_IP ?= 127.0.0.1

.PHONY: setup run test test-fast lint format bench lock clean

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check uv
	$(VENV)/bin/uv pip install -q --python $(PY) -r requirements.lock
	$(VENV)/bin/uv pip install -q --python $(PY) --no-deps -e .
	touch $@

setup: $(VENV)/.installed  ## create the virtualenv and install the locked dependencies

run: setup  ## obtain the data and run the whole system on the embedded default (local files under data/)
	$(VENV)/bin/readmit replay

test: setup  ## install everything and pass the whole test suite (real-data tests need READMIT_RAW_DATA)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(PY) -m pytest

test-fast: setup  ## unit tests only
	$(PY) -m pytest -m "not e2e and not real_data and not slow"

lint: setup
	$(VENV)/bin/ruff check src tests && $(VENV)/bin/ruff format --check src tests

format: setup
	$(VENV)/bin/ruff check --fix src tests && $(VENV)/bin/ruff format src tests

lock:  ## re-resolve requirements.lock from pyproject.toml
	uv pip compile pyproject.toml --extra tooling --extra test --python-version 3.11 -o requirements.lock

clean:
	rm -rf $(VENV) build dist .pytest_cache
