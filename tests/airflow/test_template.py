"""templates/airflow/ecs_dag.j2 through the real `kedro airflow create`, on a throwaway project.

The throwaway project has the shapes the template must handle (a namespaced fan-out, a DAG with no
schedule) and config values that break kedro-airflow 0.11's bundled template: `null`, characters
that HTML autoescaping would mangle, quotes. Airflow then imports what was written.
"""

from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
import yaml

from .conftest import PROJECT_ROOT, TEMPLATE, describe, probe

OWNER = "ml & ops <team> \"quoted\" 'single' \\ back"
PIPELINES = """
from kedro.pipeline import Pipeline, node


def _identity(x):
    return x


def register_pipelines():
    algos = [
        Pipeline(
            [
                node(_identity, "features", "model", name="fit"),
                node(_identity, "model", "metrics", name="score"),
            ],
            namespace=ns,
            inputs={"features"},
        )
        for ns in ("alpha", "beta")
    ]
    training = Pipeline([node(_identity, "raw", "features", name="prepare")]) + sum(algos)
    report = Pipeline([node(_identity, "alpha.metrics", "report", name="report")])
    return {"training": training, "report": report, "__default__": training + report}
"""


def _airflow_yml(executor: str) -> dict:
    return {
        "default": {
            "dag_ids": {"training": "tpl_training", "report": "tpl_report"},
            "dag_id_suffix": "",
            "owner": OWNER,
            "start_date": [2026, 1, 1],
            "timezone": "UTC",
            "catchup": False,
            "max_active_runs": 1,
            "max_active_tasks": 4,
            "retries": 3,
            "retry_delay_minutes": 5,
            "executor": executor,
            "local": {
                "project_dir_variable": "tpl_project_dir",
                "project_dir_env": "TPL_PROJECT_DIR",
                "kedro_bin": ".venv/bin/kedro",
                "python_bin": ".venv/bin/python",
            },
            "ecs": {
                "aws_conn_id": "aws_default",
                "region": "eu-west-1",
                "cluster": "c & d",
                "container_name": "app",
                "launch_type": "FARGATE",
                "platform_version": "LATEST",
                "awslogs_stream_prefix": "ecs",
                "deferrable": False,
                "network": {
                    "subnets": ["s-1"],
                    "security_groups": ["g-1"],
                    "assign_public_ip": "DISABLED",
                },
                "families": {
                    "small": {
                        "task_definition": "td<1>",
                        "cpu": 256,
                        "memory": 512,
                        "awslogs_group": "/g",
                    }
                },
            },
            "ecs_family": "small",
            "signals": {"done": "signals/done.json"},
            "alerts": {
                "webhook_conn_id": "tpl_webhook",
                "smtp_conn_id": "tpl_smtp",
                "email_to": ["a@example.org"],
                "routing": {"critical": ["webhook", "email"], "warning": ["webhook"], "info": []},
            },
            "gates": [],
            "downstream": [],
            "trigger_conf": {
                "run_date": {"type": "date", "kedro": True},
                "reason": {"type": "text", "max_length": 50},
            },
            "trigger_conf_overrides": {},
        },
        "training": {
            "schedule": "@daily",
            "sla_minutes": 30,
            "task_timeout_minutes": 10,
            "dagrun_timeout_minutes": 60,
            "tags": ["a&b", "it's"],
            "trigger_conf_overrides": {"alpha.depth": {"type": "int", "min": 1, "kedro": True}},
            "downstream": [
                {"pipeline": "report", "gate": {"task_id": "gate", "signal": "done", "flag": "ok"}}
            ],
        },
        "report": {
            "schedule": None,
            "sla_minutes": 5,
            "task_timeout_minutes": 5,
            "dagrun_timeout_minutes": 5,
            "retries": 0,
            "tags": [],
        },
    }


def _project(root: Path, executor: str) -> Path:
    (root / "src" / "tplcheck").mkdir(parents=True)
    (root / "src" / "tplcheck" / "__init__.py").write_text("")
    (root / "src" / "tplcheck" / "settings.py").write_text(
        'DISABLE_HOOKS_FOR_PLUGINS = ("kedro-telemetry",)\n'
    )
    (root / "src" / "tplcheck" / "pipeline_registry.py").write_text(PIPELINES)
    (root / "pyproject.toml").write_text(
        textwrap.dedent(
            """
            [tool.kedro]
            package_name = "tplcheck"
            project_name = "tplcheck"
            kedro_init_version = "1.7.0"
            source_dir = "src"
            """
        )
    )
    for env in ("base", "local", "prod"):
        (root / "conf" / env).mkdir(parents=True)
    (root / "conf" / "base" / "airflow.yml").write_text(yaml.safe_dump(_airflow_yml(executor)))
    return root


def _create(project: Path, target: Path) -> subprocess.CompletedProcess:
    options = ["--env", "prod", "--pipelines", "training,report", "--group-by", "namespace"]
    output = ["--jinja-file", str(TEMPLATE), "--target-dir", str(target)]
    return subprocess.run(
        [str(PROJECT_ROOT / ".venv/bin/kedro"), "airflow", "create", *options, *output],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize("executor", ["ecs", "local"])
def test_literals_survive_and_null_schedule_is_none(tmp_path, airflow_home, executor):
    project = _project(tmp_path / "project", executor)
    result = _create(project, tmp_path / "dags")
    assert result.returncode == 0, result.stdout + result.stderr
    source = (tmp_path / "dags" / "tplcheck_prod_training_dag.py").read_text()
    assert "&amp;" not in source and "&lt;" not in source  # no HTML autoescaping
    assert "import kedro" not in source and "from kedro" not in source

    bag = describe(airflow_home, tmp_path / "dags")
    assert bag["import_errors"] == {}
    assert set(bag["dags"]) == {"tpl_training", "tpl_report"}  # not the package name twice
    training, report = bag["dags"]["tpl_training"], bag["dags"]["tpl_report"]
    assert training["owner"] == report["owner"] == OWNER
    assert training["tags"] == sorted(["a&b", "it's", "prod"])
    assert report["timetable"] == "NullTimetable" and report["next_runs"] == []
    assert training["next_runs"][:2] == ["2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00"]
    assert set(training["tasks"]) == {"prepare", "alpha", "beta", "gate", "trigger_tpl_report"}
    if executor == "local":  # the allow-list is the same code for both executors
        # Pipeline overrides apply to their own DAG only; reason is accepted, never passed on.
        conf = {"run_date": "2026-01-04", "reason": "a & b", "alpha.depth": 3}
        dags = tmp_path / "dags"
        passed, too_low = probe(
            airflow_home,
            "params",
            str(dags / "tplcheck_prod_training_dag.py"),
            "--cases",
            json.dumps([conf, {"alpha.depth": 0}]),
        )
        assert passed == {"value": "run_date=2026-01-04,alpha.depth=3"}
        assert "dag_run.conf['alpha.depth'] = 0 must be an integer in [1, None]" in too_low["error"]
        (elsewhere,) = probe(
            airflow_home,
            "params",
            str(dags / "tplcheck_prod_report_dag.py"),
            "--cases",
            json.dumps([conf]),
        )
        assert (
            "key 'alpha.depth' is not accepted; allowed keys: reason, run_date"
            in (elsewhere["error"])
        )
    assert training["tasks"]["alpha"]["upstream"] == ["prepare"]
    assert training["tasks"]["beta"]["upstream"] == ["prepare"]
    assert training["tasks"]["gate"]["upstream"] == ["alpha", "beta"]
    if executor == "ecs":
        fields = training["tasks"]["alpha"]["fields"]
        assert fields["cluster"] == "c & d" and fields["task_definition"] == "td<1>"
        assert fields["overrides"]["containerOverrides"][0]["command"][-4:-2] == [
            "--namespaces",
            "alpha",
        ]
    else:
        assert (
            "--namespaces alpha --params run_date=2026-01-04"
            in (training["tasks"]["alpha"]["fields"]["bash_command"])
        )


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (lambda c: c["default"]["dag_ids"].pop("report"), "has_no_dag_id"),
        (lambda c: c["default"].update(executor="k8s"), "executor_must_be_local_or_ecs"),
        (lambda c: c["report"].pop("dagrun_timeout_minutes"), "needs_schedule_sla_task_timeout"),
        (lambda c: c["report"].pop("sla_minutes"), "needs_schedule_sla_task_timeout"),
        # 60 min cannot hold a 10 min task run 3 times with two 30 min delays.
        (lambda c: c["training"].update(retry_delay_minutes=30), "must_hold_the_sla_and_every"),
        (lambda c: c["training"].update(sla_minutes=61), "must_hold_the_sla_and_every"),
        (
            lambda c: c["training"].update(
                gates=[
                    {
                        "task_id": "g",
                        "check": "flag",
                        "signal": "done",
                        "flag": "ok",
                        "before": ["nope"],
                    }
                ]
            ),
            "gate_before_is_not_a_task",
        ),
        (lambda c: c["default"].update(ecs_family="huge"), "ecs_family_is_unknown"),
        (
            lambda c: c["training"]["downstream"][0]["gate"].update(signal="nope"),
            "gate_signal_is_not_in_signals",
        ),
        (
            lambda c: c["default"]["trigger_conf"].update(reason={"type": "json"}),
            "trigger_conf_type_is_unknown",
        ),
        (lambda c: c["default"]["trigger_conf"].pop("run_date"), "needs_run_date_of_type_date"),
        (
            lambda c: c["default"]["trigger_conf"]["reason"].update(kedro=True),
            "free_text_never_goes_to_kedro",
        ),
        (
            lambda c: c["training"]["trigger_conf_overrides"].update(m={"type": "choice"}),
            "choice_needs_values",
        ),
        (lambda c: c["default"].pop("trigger_conf"), "trigger_conf"),
    ],
    ids=[
        "no-dag-id",
        "bad-executor",
        "no-timeout",
        "no-sla",
        "retries-do-not-fit",
        "sla-beyond-timeout",
        "gate-before-unknown-task",
        "bad-family",
        "bad-signal",
        "conf-unknown-type",
        "conf-no-run-date",
        "conf-free-text-to-kedro",
        "conf-choice-without-values",
        "conf-no-allow-list",
    ],
)
def test_config_mistakes_stop_the_generation(tmp_path, breakage, message):
    project = _project(tmp_path / "project", "ecs")
    config = _airflow_yml("ecs")
    breakage(config)
    (project / "conf" / "base" / "airflow.yml").write_text(yaml.safe_dump(config))
    result = _create(project, tmp_path / "dags")
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
