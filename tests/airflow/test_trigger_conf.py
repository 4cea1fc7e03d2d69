"""dag_run.conf allow-list of the generated DAGs (issue 18, finding 1).

Every DAG accepts run_date, reason and triggered_by, plus the overrides its pipeline block of
conf/base/airflow.yml documents (trigger_conf_overrides), each with a typed check. Any other key,
or a value failing its check, fails the first task to render or run it (Kedro task, gate, trigger)
before a container or process starts; only the accepted Kedro parameters reach `--params`.
The DAG functions run in Airflow's venv (airflow_probe.py); Kedro parses what they return here.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.cli.utils import _split_params

from .conftest import DAGS_DIR, PROJECT_ROOT, describe, probe

VERSION = "v20260101T000000000000Z"
# The review's examples (issue 18, finding 1): each would become a `kedro run --params` override.
ATTACKS = [
    {"inference_config.model_algorithm": "/other-bucket/x"},
    {"alerting.channels.webhook.url": "https://attacker.example/hook"},
    {"monitoring_config.drift_threshold_psi": 1e9},
    {"training_config.champion.tolerance": 1.0},
]
# pipeline -> the overrides it accepts, beyond run_date / reason / triggered_by.
OVERRIDES = {
    "data_processing": {"full_rebuild", "training_trigger.min_new_rows"},
    "training": set(),
    "inference": {"inference_config.model_algorithm", "inference_config.model_version"},
    "monitoring": set(),
}
COMMON = {"run_date", "reason", "triggered_by"}


def _dag_file(env: str, pipeline: str) -> Path:
    (path,) = (DAGS_DIR / env).glob(f"readmit_kedro_{env}_{pipeline}_dag.py")
    return path


def _trigger_conf(path: Path) -> dict:
    """TRIGGER_CONF of a generated DAG file, read from its source (literals only)."""
    tree = ast.parse(path.read_text())
    return next(
        ast.literal_eval(n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "TRIGGER_CONF"
    )


def _params(home: Path, path: Path, cases: list[dict]) -> list[dict]:
    return probe(home, "params", str(path), "--cases", json.dumps(cases))


def _error(result: dict) -> str:
    assert "error" in result, result
    return result["error"]


@pytest.mark.parametrize("pipeline", list(OVERRIDES))
def test_each_dag_accepts_only_its_keys_and_refuses_the_attacks(airflow_home, pipeline):
    path = _dag_file("dev", pipeline)
    allowed = COMMON | OVERRIDES[pipeline]
    nested = {"training_config": {"champion": {"tolerance": 1.0}}}
    results = _params(airflow_home, path, [*ATTACKS, nested, {"sample_size": 250}])
    for conf, result in zip([*ATTACKS, nested, {"sample_size": 250}], results, strict=True):
        (key,) = conf
        message = _error(result)
        if key in allowed:  # inference's model_algorithm: accepted key, refused value
            assert f"dag_run.conf[{key!r}] = '/other-bucket/x' must be one of" in message
            assert "'logistic_regression', 'random_forest', 'xgboost'" in message
            continue
        assert f"dag_run.conf key {key!r} is not accepted" in message, (pipeline, message)
        assert "allowed keys: " + ", ".join(sorted(allowed)) in message
    assert set(_trigger_conf(path)) == allowed


def test_allowed_keys_with_bad_values_are_refused(airflow_home):
    inference = [
        {"inference_config.model_algorithm": "XGBoost", "inference_config.model_version": VERSION},
        {"inference_config.model_algorithm": "xgboost", "inference_config.model_version": "latest"},
        {"inference_config.model_algorithm": "xgboost", "inference_config.model_version": "../v1"},
        {"inference_config.model_version": VERSION + "/../../x"},
        {"inference_config.model_version": 20260101},
        {"inference_config.model_algorithm": ["xgboost"]},
    ]
    results = _params(airflow_home, _dag_file("dev", "inference"), inference)
    for conf, result in zip(inference, results, strict=True):
        message = _error(result)
        assert "must be one of" in message or r"must match v\d{8}T\d{12}Z" in message, conf
    data = [
        {"full_rebuild": "true"},
        {"full_rebuild": 1},
        {"training_trigger.min_new_rows": "50"},
        {"training_trigger.min_new_rows": -5},
        {"run_date": "2026-13-01"},
        {"run_date": "2026-01-04,full_rebuild=true"},
        {"reason": "r" * 201},
        {"reason": "a\x1b[31m red"},
        {"triggered_by": "dag id with spaces"},
        {"triggered_by": None},
    ]
    results = _params(airflow_home, _dag_file("dev", "data_processing"), data)
    for conf, result in zip(data, results, strict=True):
        (key,) = conf
        assert f"dag_run.conf[{key!r}] = " in _error(result), conf


def test_allowed_keys_reach_kedro_params_as_kedro_parses_them(airflow_home):
    audit = {"reason": "incident 42: re-score with the previous champion", "triggered_by": "ops"}
    pin = {"inference_config.model_algorithm": "random_forest"} | {
        "inference_config.model_version": VERSION
    }
    (scored,) = _params(airflow_home, _dag_file("prod", "inference"), [audit | pin])
    assert _split_params(None, None, scored["value"]) == {
        "run_date": "2026-01-04",
        "inference_config": {"model_algorithm": "random_forest", "model_version": VERSION},
    }
    cases = [
        {"run_date": "2008-12-31", "full_rebuild": True} | audit,
        {"full_rebuild": False, "training_trigger.min_new_rows": 0},
    ]
    rebuilt, lowered = _params(airflow_home, _dag_file("dev", "data_processing"), cases)
    assert _split_params(None, None, rebuilt["value"]) == {
        "run_date": "2008-12-31",
        "full_rebuild": True,
    }
    assert _split_params(None, None, lowered["value"]) == {
        "run_date": "2026-01-04",
        "full_rebuild": False,
        "training_trigger": {"min_new_rows": 0},
    }


def test_a_refused_conf_fails_every_task_before_it_starts(airflow_home):
    """Prod: ECS commands and trigger confs are rendered before the operator runs; a refused conf
    makes every rendering fail, so no ECS task is started and no other DAG triggered."""
    bag = describe(airflow_home, DAGS_DIR / "prod", conf=ATTACKS[1])
    assert bag["import_errors"] == {}
    checked = 0
    for dag in bag["dags"].values():
        for task in dag["tasks"].values():
            if task["type"] in {"EcsRunTaskOperator", "TriggerDagRunOperator"}:
                assert "'alerting.channels.webhook.url' is not accepted" in task.get(
                    "render_error", ""
                ), task
                checked += 1
    assert checked > 20


def test_the_allow_list_takes_its_values_from_the_project():
    """Algorithms: the configured set (globals model_algorithms, also training_config.algorithms),
    the estimators training can fit; versions: the registry's VERSION_NAME."""
    from readmit_kedro.io.atomic import VERSION_NAME
    from readmit_kedro.pipelines.training.modeling import ESTIMATORS

    for env in ("dev", "prod"):
        loader = OmegaConfigLoader(
            str(PROJECT_ROOT / "conf"),
            base_env="base",
            default_run_env=env,
            merge_strategy={"parameters": "soft"},
        )
        algorithms = loader["parameters"]["training_config"]["algorithms"]
        assert sorted(algorithms) == sorted(ESTIMATORS)
        rules = _trigger_conf(_dag_file(env, "inference"))
        assert rules["inference_config.model_algorithm"]["values"] == algorithms
        assert rules["inference_config.model_version"]["pattern"] == VERSION_NAME
        assert all(
            rule.get("kedro") is not True
            for key, rule in rules.items()
            if key in {"reason", "triggered_by"}
        )
