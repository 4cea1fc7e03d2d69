#!/usr/bin/env bash
# Write the Airflow DAGs (dags/dev/, dags/prod/) from the Kedro pipelines and conf/<env>/airflow.yml.
# Used by `make dags` and by tests/airflow (which regenerates into a temporary folder and diffs).
#
#   scripts/generate_dags.sh [OUT_DIR]        # default: dags
#
# Per env this is one command, run for every pipeline named in conf/base/airflow.yml `dag_ids`
# that the project registers:
#   kedro airflow create --env <env> --pipelines <p,...> --group-by namespace \
#     --jinja-file templates/airflow/ecs_dag.j2 --target-dir <OUT_DIR>/<env>
# then `ruff format`. Generated files of pipelines no longer registered are removed.
# PROJECT_DIR, VENV and AIRFLOW_ENVS override the defaults (the repository, its .venv, "dev prod").
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
project="$(cd "${PROJECT_DIR:-$here}" && pwd)"
venv="${VENV:-$here/.venv}"
out="${1:-dags}"
[[ "$out" = /* ]] || out="$project/$out"
template="$here/templates/airflow/ecs_dag.j2"
export KEDRO_DISABLE_TELEMETRY=true DO_NOT_TRACK=1 PYTHONWARNINGS=ignore

cd "$project"
# Registered pipelines that airflow.yml gives a DAG id, in airflow.yml's order. (Kedro logs to
# stdout, hence the marker line.)
pipelines="$("$venv/bin/python" - <<'PY' | sed -n 's/^AIRFLOW_PIPELINES=//p'
from pathlib import Path

import yaml
from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project

bootstrap_project(Path.cwd())
registered = dict(pipelines)  # loads the registry: a broken pipeline fails here, loudly
dag_ids = yaml.safe_load(Path("conf/base/airflow.yml").read_text())["default"]["dag_ids"]
print("AIRFLOW_PIPELINES=" + ",".join(name for name in dag_ids if name in registered))
PY
)"
if [[ -z "$pipelines" ]]; then
    echo "generate_dags: no registered pipeline has a DAG id in conf/base/airflow.yml" >&2
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for env in ${AIRFLOW_ENVS:-dev prod}; do
    "$venv/bin/kedro" airflow create --env "$env" --pipelines "$pipelines" --group-by namespace \
        --jinja-file "$template" --target-dir "$tmp/$env" \
        | { grep -v -e " INFO " -e "^Location of the Airflow DAG folder" || true; }
done
"$venv/bin/ruff" format --quiet --isolated --line-length 100 --target-version py311 "$tmp"
for env in ${AIRFLOW_ENVS:-dev prod}; do
    mkdir -p "$out/$env"
    rm -f "$out/$env"/*_dag.py
    cp "$tmp/$env"/*_dag.py "$out/$env/"
    echo "generate_dags: $env: $(cd "$out/$env" && ls ./*_dag.py | xargs -n1 basename | tr '\n' ' ')"
done
