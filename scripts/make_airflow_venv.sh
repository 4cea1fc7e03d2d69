#!/usr/bin/env bash
# Create the Airflow virtualenv (default .airflow-venv) from airflow/requirements-airflow.txt: Airflow
# 3.3.2 and its providers only, kept apart from the project's .venv (Kedro never enters it). The
# tests in tests/airflow and benchmarks/bench_dag_parse.py run Airflow through its interpreter.
#   scripts/make_airflow_venv.sh [VENV_DIR]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv="${1:-.airflow-venv}"
python="${PYTHON:-python3}"

# uv resolves nothing here (the lock is complete); it only installs, much faster than pip.
if [[ -x .venv/bin/uv ]]; then
    uv=.venv/bin/uv
elif command -v uv >/dev/null; then
    uv="$(command -v uv)"
else
    uv=""
fi

start=$SECONDS
rm -rf "$venv"
"$python" -m venv "$venv"
if [[ -z "$uv" ]]; then
    "$venv/bin/pip" install -q --disable-pip-version-check uv
    uv="$venv/bin/uv"
fi
# --no-deps: the lock is the whole closure; `pip check` proves it is consistent.
# --require-hashes: every distribution must match a sha256 of the lock (`make airflow-lock`).
"$uv" pip install -q --python "$venv/bin/python" --require-hashes --no-deps \
    -r airflow/requirements-airflow.txt
if ! check="$("$uv" pip check --python "$venv/bin/python" 2>&1)"; then
    echo "$check" >&2
    exit 1
fi
echo "make_airflow_venv: $("$venv/bin/airflow" version 2>/dev/null | tail -n 1) in $venv" \
    "($((SECONDS - start)) s)"
touch "$venv/.installed"
