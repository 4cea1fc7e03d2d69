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

.PHONY: setup run test test-fast lint format bench viz audit test-s3 lock image-locks clean

# The locks carry sha256 hashes of every distribution (`make lock`); installs verify them
# (--require-hashes) and take nothing from outside the lock (--no-deps, then `uv pip check`).
# uv itself is the one unhashed bootstrap install, pinned by version.
UV_VERSION := 0.13.9
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check "uv==$(UV_VERSION)"
	$(VENV)/bin/uv pip install -q --python $(PY) --require-hashes --no-deps \
		-r requirements.lock
	$(VENV)/bin/uv pip install -q --python $(PY) --no-deps -e .
	$(VENV)/bin/uv pip check --python $(PY)
	touch $@

setup: $(VENV)/.installed  ## create the virtualenv and install the locked dependencies

run: setup  ## obtain the data and run the whole system on the embedded default (local files under data/)
	$(VENV)/bin/readmit replay

test: setup airflow-venv  ## install everything and pass the whole test suite (real-data tests need READMIT_RAW_DATA)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(PY) -m pytest -n 2

test-fast: setup  ## unit tests only
	$(PY) -m pytest -m "not e2e and not real_data and not slow"

bench: setup  ## print the performance figures (data, training, inference, monitoring)
	$(PY) -m benchmarks.bench_data_processing
	$(PY) -m benchmarks.bench_training
	$(PY) -m benchmarks.bench_inference
	$(PY) -m benchmarks.bench_monitoring

audit: setup  ## pip-audit of requirements.lock; exit 3 "AUDIT NOT RUN" when no vulnerability data is reachable
	VENV=$(VENV) scripts/pip_audit.sh

test-s3: setup  ## the four pipelines on moto's S3 server (127.0.0.1), prod catalog layout
	$(PY) -m pytest tests/s3 -m e2e

viz: setup  ## static kedro-viz site in ./build (serve: python -m http.server -d build)
	$(VENV)/bin/kedro viz build

lint: setup
	$(VENV)/bin/ruff check src tests && $(VENV)/bin/ruff format --check src tests

format: setup
	$(VENV)/bin/ruff check --fix src tests && $(VENV)/bin/ruff format src tests

# uv from PATH, else the one `make setup` put in .venv.
UV ?= $(shell command -v uv 2>/dev/null || echo $(VENV)/bin/uv)
lock:  ## re-resolve requirements.lock (hashed) from pyproject.toml, then the image's two locks
	$(UV) pip compile pyproject.toml --extra connect --extra serve --extra tooling --extra test \
		--python-version 3.11 --generate-hashes -o requirements.lock
	$(MAKE) image-locks

image-locks:  ## the Dockerfile's hashed locks, at the versions of requirements.lock
	$(UV) pip compile deploy/docker/requirements-package.in -c requirements.lock --python-version 3.11 \
		--generate-hashes --custom-compile-command "make image-locks" \
		-o deploy/docker/requirements-package.lock
	$(UV) pip compile pyproject.toml --extra serve -c requirements.lock --python-version 3.11 \
		--generate-hashes --custom-compile-command "make image-locks" \
		-o deploy/docker/requirements-runtime.lock

# The Dockerfile's outside inputs (deploy/SECURITY.md, "Supply chain"): base images by digest,
# S3A jars by SHA-256. pin-images needs a registry client (crane, docker buildx or skopeo),
# pin-jars needs Maven Central; check-pins fails while anything is unpinned (run it before a
# release build).
.PHONY: pin-images pin-jars check-pins
pin-images:  ## write the base images' digests into the Dockerfile
	$(PYTHON) scripts/pin_image_inputs.py images

pin-jars:  ## download the S3A jars, check Maven's SHA-1, write their SHA-256 into the Dockerfile
	$(PYTHON) scripts/pin_image_inputs.py jars

check-pins:  ## fail unless every base image has a digest and every jar a SHA-256
	$(PYTHON) scripts/pin_image_inputs.py check

clean:
	rm -rf $(VENV) build dist .pytest_cache

# --- Airflow: DAGs generated from the pipelines, an Airflow-only virtualenv, DAG tests -----------
AIRFLOW_VENV ?= .airflow-venv
.PHONY: airflow-venv airflow-lock dags test-airflow bench-dags package

$(AIRFLOW_VENV)/.installed: airflow/requirements-airflow.txt scripts/make_airflow_venv.sh
	PYTHON=$(PYTHON) scripts/make_airflow_venv.sh $(AIRFLOW_VENV)

airflow-venv: $(AIRFLOW_VENV)/.installed  ## Airflow 3.3.2 + providers in .airflow-venv (never in .venv)

airflow-lock:  ## re-resolve airflow/requirements-airflow.txt (hashed) from airflow/requirements-airflow.in
	$(UV) pip compile airflow/requirements-airflow.in --python-version 3.11 --generate-hashes \
		--custom-compile-command "make airflow-lock" -o airflow/requirements-airflow.txt

dags: setup  ## regenerate dags/dev and dags/prod (kedro airflow create + templates/airflow/ecs_dag.j2)
	VENV=$(VENV) scripts/generate_dags.sh dags

test-airflow: setup airflow-venv  ## DAG tests, with the end-to-end Airflow runs (tests/airflow)
	$(PY) -m pytest tests/airflow

bench-dags: setup airflow-venv  ## DAG parse time per file
	$(PY) -m benchmarks.bench_dag_parse

package: setup  ## the wheel and conf tarball the Dockerfile installs (dist/)
	$(VENV)/bin/kedro package
