"""The committed DAGs (dags/dev, dags/prod) as Airflow 3.3 sees them, against the Kedro pipelines.

Airflow imports and renders the DAGs in its own venv (conftest.describe); Kedro's side is loaded
here. Nothing is mocked: the DagBag is Airflow's, the operators are the providers', the pipelines
and their dependencies are the project's.
"""

from __future__ import annotations

import filecmp
import shlex
import subprocess
from datetime import datetime, timedelta

import pytest
from kedro.framework.cli.utils import _split_params

from .conftest import DAGS_DIR, ENVS, PROJECT_ROOT, airflow_yml, dag_ids

SUFFIX = {"dev": "_dev", "prod": ""}
CRON = {
    "data_processing": "0 2 * * *",
    "training": "0 3 * * 0#1",
    "inference": "0 6 * * *",
    "monitoring": "0 10 * * 0",
}
# The seed's SLAs ("DAG-Level Metrics"), and the separate timeouts of conf/base/airflow.yml.
SLA_MINUTES = {"data_processing": 30, "training": 240, "inference": 15, "monitoring": 30}
TASK_TIMEOUT_MINUTES = {"data_processing": 20, "training": 180, "inference": 10, "monitoring": 15}
TIMEOUT_MINUTES = {"data_processing": 90, "training": 420, "inference": 45, "monitoring": 70}
RETRIES = {"prod": {"training": 1}, "dev": {}}
# The first runs after start_date 2026-01-01 (a Thursday), worked out by hand from the design.
FIRST_RUNS = {
    "data_processing": ["2026-01-01T02:00", "2026-01-02T02:00", "2026-01-03T02:00"],
    "training": ["2026-01-04T03:00", "2026-02-01T03:00", "2026-03-01T03:00", "2026-04-05T03:00"],
    "inference": ["2026-01-01T06:00", "2026-01-02T06:00", "2026-01-03T06:00"],
    "monitoring": ["2026-01-04T10:00", "2026-01-11T10:00", "2026-01-18T10:00"],
}
# "Orchestration Between DAGs": pipeline -> (pipeline it triggers, gate task id, signal, flag).
TRIGGERS = {
    "data_processing": ("training", "check_sufficient_new_data", "new_data", "train_recommended"),
    "training": ("inference", None, None, None),
    "inference": ("monitoring", None, None, None),
    "monitoring": ("training", "check_retrain_recommended", "retrain", "retrain_recommended"),
}
# Task families and sizes from the design (1 vCPU/2 GB, 2 vCPU/4 GB).
FAMILY = {
    "training": ("diab-readmit-demo-model-training", "2048", "4096"),
    "data_processing": ("diab-readmit-demo-pipeline", "1024", "2048"),
    "inference": ("diab-readmit-demo-pipeline", "1024", "2048"),
    "monitoring": ("diab-readmit-demo-pipeline", "1024", "2048"),
}
# conftest.described renders with this dag_run.conf and logical date 2026-01-04.
# triggered_by and reason are accepted but never passed to Kedro (conf/base/airflow.yml trigger_conf).
EXPECTED_PARAMS = "run_date=2026-01-04"


def _group_key(node) -> str:
    """The task a node belongs to: its top-level namespace, else the node itself."""
    return node.namespace.split(".")[0] if node.namespace else node.name


def kedro_groups(pipeline) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """From Kedro's own nodes and dependencies: task -> node names, task -> upstream tasks."""
    members: dict[str, set[str]] = {}
    for node in pipeline.nodes:
        members.setdefault(_group_key(node), set()).add(node.name)
    upstream: dict[str, set[str]] = {key: set() for key in members}
    for child, parents in pipeline.node_dependencies.items():
        for parent in parents:
            if _group_key(parent) != _group_key(child):
                upstream[_group_key(child)].add(_group_key(parent))
    return members, upstream


def _dag(described, env, pipeline_name) -> dict:
    return described[env]["dags"][dag_ids()[pipeline_name] + SUFFIX[env]]


def _kedro_argv(task: dict) -> list[str]:
    """The `kedro ...` argv of a Kedro task, from the ECS container command or the bash command."""
    fields = task["fields"]
    if task["type"] == "EcsRunTaskOperator":
        (container,) = fields["overrides"]["containerOverrides"]
        return container["command"]
    argv = shlex.split(fields["bash_command"])
    assert argv[0] == "exec"
    return argv[1:]


def _kedro_tasks(dag: dict) -> dict[str, dict]:
    return {
        task_id: task
        for task_id, task in dag["tasks"].items()
        if task["type"] in {"EcsRunTaskOperator", "BashOperator"}
    }


def _kedro_upstream(dag: dict, task: dict) -> set[str]:
    """The Kedro tasks a task waits for, directly or through an in-DAG gate."""
    found = set()
    for upstream_id in task["upstream"]:
        upstream = dag["tasks"][upstream_id]
        if upstream["type"] == "ShortCircuitOperator":
            found |= _kedro_upstream(dag, upstream)
        elif upstream_id in _kedro_tasks(dag):
            found.add(upstream_id)
    return found


def _descendants(dag: dict, task_id: str) -> set[str]:
    found, todo = set(), [task_id]
    while todo:
        for child in dag["tasks"][todo.pop()]["downstream"]:
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


# Gates inside a DAG (airflow.yml `gates`): pipeline -> (gate task id, the tasks right after it).
GATES = {
    "training": ("check_training_prerequisites", {"validate_training_config"}),
    "inference": ("check_new_encounters", {"score_encounters"}),
}


@pytest.mark.parametrize("env", ENVS)
def test_gates_stand_before_the_work_they_can_skip(described, kedro_pipelines, env):
    """Training: the gate is the DAG's only root, so a closed gate skips every task (no container
    starts). Inference: the gate follows find_new_encounters and skips scoring, publishing and
    the monitoring trigger."""
    for name, (gate_id, after) in GATES.items():
        dag = _dag(described, env, name)
        gate = dag["tasks"][gate_id]
        assert gate["type"] == "ShortCircuitOperator"
        assert set(gate["downstream"]) == after
        skipped = _descendants(dag, gate_id)
        if name == "training":
            assert gate["upstream"] == []
            assert skipped == set(dag["tasks"]) - {gate_id}
        else:
            assert gate["op_kwargs"] == {"signal": "inference_work", "flag": "scoring_needed"}
            assert set(gate["upstream"]) == {"check_model_exists", "find_new_encounters"}
            target = "trigger_" + dag_ids()["monitoring"] + SUFFIX[env]
            assert {"score_encounters", "publish_predictions", target} <= skipped
            assert not {"check_model_exists", "find_new_encounters"} & skipped


def test_committed_dags_are_what_make_dags_writes(tmp_path):
    """Regenerate into a temporary folder with the `make dags` script and compare byte for byte."""
    result = subprocess.run(
        ["scripts/generate_dags.sh", str(tmp_path)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for env in ENVS:
        fresh = sorted(p.name for p in (tmp_path / env).glob("*.py"))
        committed = sorted(p.name for p in (DAGS_DIR / env).glob("*.py"))
        assert committed == fresh, f"dags/{env} is stale: run `make dags`"
        _, mismatch, errors = filecmp.cmpfiles(tmp_path / env, DAGS_DIR / env, fresh, shallow=False)
        assert not mismatch and not errors, f"dags/{env}: {mismatch + errors} differ: `make dags`"


@pytest.mark.parametrize("env", ENVS)
def test_dagbag_imports_every_dag_without_kedro(described, kedro_pipelines, env):
    bag = described[env]
    assert bag["import_errors"] == {}
    expected = {dag_ids()[name] + SUFFIX[env] for name in kedro_pipelines}
    assert set(bag["dags"]) == expected
    assert bag["project_modules_imported"] == []
    for dag in bag["dags"].values():
        assert dag["fileloc"].startswith(str(DAGS_DIR / env))


def test_prod_ids_are_the_designs_and_dev_ids_differ(described, kedro_pipelines):
    design = {
        "data_processing": "diab_medallion_ecs",
        "training": "diab_model_training",
        "inference": "diab_model_inference",
        "monitoring": "diab_model_monitoring",
    }
    assert dag_ids() == design
    assert set(described["prod"]["dags"]) == {design[name] for name in kedro_pipelines}
    assert not set(described["prod"]["dags"]) & set(described["dev"]["dags"])


@pytest.mark.parametrize("env", ENVS)
def test_schedules_timeouts_and_settings(described, kedro_pipelines, env):
    for name in kedro_pipelines:
        dag = _dag(described, env, name)
        assert dag["timetable"] == "CronTriggerTimetable"
        assert dag["timetable_args"]["__var"]["expression"] == CRON[name]
        assert dag["timetable_args"]["__var"]["timezone"] == "UTC"
        runs = [run[:16] for run in dag["next_runs"]]
        assert runs[: len(FIRST_RUNS[name])] == FIRST_RUNS[name]
        assert dag["dagrun_timeout_s"] == TIMEOUT_MINUTES[name] * 60
        assert dag["catchup"] is False and dag["max_active_runs"] == 1
        assert env in dag["tags"]
        retries = RETRIES[env].get(name, 2 if env == "prod" else 0)
        for task in _kedro_tasks(dag).values():
            assert task["execution_timeout_s"] == TASK_TIMEOUT_MINUTES[name] * 60
            assert task["retries"] == retries
        # Every retry of the slowest task fits in the run (retry delay: 5 min prod, 1 min dev).
        delay = 5 if env == "prod" else 1
        worst = (retries + 1) * TASK_TIMEOUT_MINUTES[name] + retries * delay
        assert worst <= TIMEOUT_MINUTES[name], (name, worst)


@pytest.mark.parametrize("env", ENVS)
def test_the_sla_is_a_deadline_alert_to_the_webhook(described, kedro_pipelines, env):
    """Airflow >= 3.1 DeadlineAlert, from the moment the run is queued (scheduled, triggered or
    manual runs alike); the callback is the http provider's notifier on the alert connection,
    run by the triggerer."""
    for name in kedro_pipelines:
        deadline, *others = _dag(described, env, name)["deadlines"]
        # Only inference has others: "down > 2 h", one per critical channel (test_notifications.py).
        down = [7200, 7200, 7200] if name == "inference" else []
        assert [d["interval_s"] for d in others] == down
        if name == "inference":
            (page,) = [d for d in others if d["path"].endswith(".PagerdutyNotifier")]
            assert page["path"] == (
                "airflow.providers.pagerduty.notifications.pagerduty.PagerdutyNotifier"
            )
            assert page["kwargs"]["pagerduty_events_conn_id"] == "readmit_alerts_pagerduty"
            assert page["kwargs"]["severity"] == "critical"
            dag_id = dag_ids()[name] + SUFFIX[env]
            assert (
                page["kwargs"]["summary"]
                == f"[CRITICAL] {dag_id}: down: no successful run for 2:00:00"
            )
        assert deadline["reference"] == "DagRunQueuedAtDeadline"
        assert deadline["interval_s"] == SLA_MINUTES[name] * 60 < TIMEOUT_MINUTES[name] * 60
        assert deadline["callback"] == "AsyncCallback"
        assert deadline["path"] == "airflow.providers.http.notifications.http.HttpNotifier"
        assert deadline["kwargs"]["http_conn_id"] == "readmit_alerts_webhook"
        assert "SLA of" in deadline["kwargs"]["json"]["text"]


def test_training_runs_on_the_first_sunday_of_every_month(described, kedro_pipelines):
    if "training" not in kedro_pipelines:
        pytest.skip("training is not registered yet")
    runs = [datetime.fromisoformat(run) for run in _dag(described, "prod", "training")["next_runs"]]
    assert len(runs) == 6
    for run in runs:
        assert (run.weekday(), run.hour, run.minute) == (6, 3, 0)  # Sunday 03:00
        assert (run - timedelta(days=7)).month != run.month  # no earlier Sunday that month
    assert [run.month for run in runs] == [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("env", ENVS)
def test_one_task_per_node_group_with_kedros_edges(described, kedro_pipelines, env):
    for name, pipeline in kedro_pipelines.items():
        members, upstream = kedro_groups(pipeline)
        tasks = _kedro_tasks(_dag(described, env, name))
        assert set(tasks) == set(members), name
        for task_id, task in tasks.items():
            assert _kedro_upstream(_dag(described, env, name), task) == upstream[task_id], (
                name,
                task_id,
            )
            argv = _kedro_argv(task)
            assert argv[1:6] == ["run", "--env", env, "--pipelines", name]
            selector, value = argv[6:8]
            selected = (
                pipeline.only_nodes_with_namespaces([value])
                if selector == "--namespaces"
                else pipeline.only_nodes(*value.split(","))
            )
            assert {node.name for node in selected.nodes} == members[task_id], (name, task_id)
            assert argv[8:] == ["--params", EXPECTED_PARAMS]


def test_training_preprocesses_once_then_trains_three_algorithms_in_parallel(
    described, kedro_pipelines
):
    if "training" not in kedro_pipelines:
        pytest.skip("training is not registered yet")
    tasks = _kedro_tasks(_dag(described, "prod", "training"))
    algorithms = ["logistic_regression", "random_forest", "xgboost"]
    assert set(algorithms) <= set(tasks)
    upstreams = {algorithm: set(tasks[algorithm]["upstream"]) for algorithm in algorithms}
    (shared,) = {frozenset(u) for u in upstreams.values()}  # all three wait for the same task
    (preprocessing,) = shared
    assert not set(algorithms) & set(tasks[preprocessing]["upstream"])
    for algorithm in algorithms:
        assert not set(algorithms) & set(tasks[algorithm]["downstream"])


def test_params_reach_kedro_as_kedro_parses_them(described, kedro_pipelines):
    task = next(iter(_kedro_tasks(_dag(described, "prod", next(iter(kedro_pipelines)))).values()))
    argv = _kedro_argv(task)
    params = _split_params(None, None, argv[argv.index("--params") + 1])
    assert params == {"run_date": "2026-01-04"}


def test_prod_tasks_are_ecs_tasks_of_the_designs_families(described, kedro_pipelines):
    ecs = airflow_yml("base")["default"]["ecs"]
    network = airflow_yml("prod")["default"]["ecs"]["network"]
    for name in kedro_pipelines:
        family, cpu, memory = FAMILY[name]
        for task_id, task in _kedro_tasks(_dag(described, "prod", name)).items():
            assert task["type"] == "EcsRunTaskOperator"
            fields = task["fields"]
            assert "render_error" not in task
            assert fields["task_definition"] == family
            assert fields["cluster"] == ecs["cluster"]
            assert fields["launch_type"] == "FARGATE"
            assert fields["overrides"]["cpu"] == cpu and fields["overrides"]["memory"] == memory
            (container,) = fields["overrides"]["containerOverrides"]
            assert container["name"] == fields["container_name"] == ecs["container_name"]
            assert container["command"][0] == "kedro"
            assert fields["network_configuration"] == {
                "awsvpcConfiguration": {
                    "subnets": network["subnets"],
                    "securityGroups": network["security_groups"],
                    "assignPublicIp": "DISABLED",
                }
            }
            assert fields["awslogs_group"] == f"/ecs/{family}"
            assert fields["awslogs_stream_prefix"] == ecs["awslogs_stream_prefix"]
            assert fields["awslogs_region"] == ecs["region"]
            assert fields["reattach"] is True
            assert fields["tags"]["airflow_task_id"] == task_id


def test_dev_tasks_run_kedro_from_the_project_venv(described, kedro_pipelines):
    for name in kedro_pipelines:
        for task in _kedro_tasks(_dag(described, "dev", name)).values():
            assert task["type"] == "BashOperator"
            assert "render_error" not in task
            fields = task["fields"]
            assert fields["cwd"] == str(PROJECT_ROOT)
            assert _kedro_argv(task)[0] == ".venv/bin/kedro"
            assert fields["env"]["PYSPARK_PYTHON"] == str(PROJECT_ROOT / ".venv/bin/python")
            assert fields["env"]["KEDRO_DISABLE_TELEMETRY"] == "true"


@pytest.mark.parametrize("env", ENVS)
def test_dags_trigger_each_other_as_the_design_draws(described, kedro_pipelines, env):
    for name in kedro_pipelines:
        dag = _dag(described, env, name)
        target, gate_id, signal, flag = TRIGGERS[name]
        target_id = dag_ids()[target] + SUFFIX[env]
        trigger = dag["tasks"][f"trigger_{target_id}"]
        assert trigger["type"] == "TriggerDagRunOperator"
        fields = trigger["fields"]
        assert fields["trigger_dag_id"] == target_id
        assert fields["conf"] == {
            "run_date": "2026-01-04",
            "triggered_by": dag_ids()[name] + SUFFIX[env],
        }
        assert fields["trigger_run_id"].startswith(
            f"triggered_by__{dag_ids()[name]}{SUFFIX[env]}__"
        )
        assert trigger["skip_when_already_exists"] is True
        assert trigger["wait_for_completion"] is False
        kedro_tasks = _kedro_tasks(dag)
        after = {f"trigger_{target_id}", gate_id}
        sinks = {t for t, task in kedro_tasks.items() if set(task["downstream"]) <= after}
        if gate_id is None:
            assert set(trigger["upstream"]) == sinks
            continue
        gate = dag["tasks"][gate_id]
        assert gate["type"] == "ShortCircuitOperator"
        assert gate["op_kwargs"] == {"signal": signal, "flag": flag}
        assert trigger["upstream"] == [gate_id]
        assert set(gate["upstream"]) == sinks


def test_generated_files_are_lint_clean():
    """dags/ is outside the project's ruff run; the generated code is held to the same rules."""
    rules = [
        "--select",
        "E,F,W,I,UP,B,SIM,RUF",
        "--line-length",
        "100",
        "--target-version",
        "py311",
    ]
    result = subprocess.run(
        [str(PROJECT_ROOT / ".venv/bin/ruff"), "check", "--isolated", *rules, str(DAGS_DIR)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
