"""A real Airflow 3.3 scheduler runs the dev DAGs and follows their cross-DAG triggers.

`airflow dags test` (test_e2e.py) runs one DAG in-process and never follows a
TriggerDagRunOperator; here the four components a deployment runs are started one by one
(api-server, scheduler with the LocalExecutor, dag-processor, triggerer) on 127.0.0.1, with a
SQLite metadata DB in a temporary AIRFLOW_HOME, on a copy of the project holding synthetic extracts.
Every task is a real `.venv/bin/kedro run --env dev ...` process. The alert connections point at a
loopback webhook receiver and an aiosmtpd server, as a secrets backend would provide them.
Last, finished tasks are cleared and run again, as a retry does: they must change nothing.

Cron schedules are off (`[scheduler] use_job_schedule = False`): unpausing a DAG whose start_date
is past would otherwise queue a run for today, far outside the 1999-2008 data. Triggered and
cross-triggered runs are what is tested. Every process is started by this module in its own
session and stopped by its process group id; the ports must be free afterwards.
"""

from __future__ import annotations

import contextlib
import email
import json
import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.support.net import free_port

from .conftest import (
    AIRFLOW_VENV,
    airflow_env,
    alert_connections,
    dag_ids,
    project_copy,
    smtp_receiver,
    webhook_receiver,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SYNTHETIC_ROWS = 10000
EARLY_DATE = "2001-12-31"  # three years of extracts: fewer year partitions than training needs
RUN_DATE = "2008-12-31"  # the whole synthetic history: training's 1999-2008 windows
# The "enough new data?" bar of the trigger, lowered for the small sample (as in test_e2e).
CONF = {"training_trigger.min_new_rows": 50}
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
START_TIMEOUT_S = 120  # a component answering, the DAGs parsed
CHAIN_TIMEOUT_S = 1500  # data processing -> training -> inference -> monitoring on 2 busy cores
STOP_TIMEOUT_S = 30
VOLUME_VARIABLE = "readmit_rows_per_extract__diab_medallion_ecs_dev"  # check_data_volume's baseline


def _dev_id(pipeline: str) -> str:
    return dag_ids()[pipeline] + "_dev"


def _triggered_id(upstream_dag_id: str, upstream_run_id: str) -> str:
    """The run id a TriggerDagRunOperator of the template gives the run it triggers."""
    return f"triggered_by__{upstream_dag_id}__{upstream_run_id}"


class Airflow:
    """The Airflow components this test started, and a client of their REST API."""

    def __init__(self, home: Path, env: dict[str, str], port: int) -> None:
        self.home = home
        self.project: Path | None = None  # the project copy the tasks run in
        self.env = env
        self.port = port
        self.processes: dict[str, subprocess.Popen] = {}

    def cli(self, *args: str, timeout: int = 300) -> str:
        result = subprocess.run(
            [str(AIRFLOW_VENV / "bin/airflow"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
        return result.stdout

    def start(self, component: str, *args: str) -> None:
        """Start one component in a session of its own (its children share the group id)."""
        log = (self.home / f"{component}.log").open("w")
        self.processes[component] = subprocess.Popen(
            [str(AIRFLOW_VENV / "bin/airflow"), component, *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def stop(self) -> None:
        """SIGTERM each started component's process group, SIGKILL what is left after a while."""
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(1.0, deadline - time.monotonic()))
        for process in self.processes.values():
            # Children (LocalExecutor workers, API workers) may outlive their parent.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_S)

    def check_alive(self) -> None:
        for component, process in self.processes.items():
            if process.poll() is not None:
                log = (self.home / f"{component}.log").read_text()[-3000:]
                pytest.fail(f"airflow {component} exited ({process.returncode}):\n{log}")

    def api(self, method: str, path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/v2{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def trigger(self, dag_id: str, conf: dict) -> str:
        """A manual run of dag_id with this conf; its run id."""
        logical_date = datetime.now(UTC).isoformat()
        run = self.api(
            "POST", f"/dags/{dag_id}/dagRuns", {"logical_date": logical_date, "conf": conf}
        )
        return run["dag_run_id"]

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        try:
            return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
        except urllib.error.HTTPError as error:
            if error.code == 404:  # not triggered yet
                return None
            raise

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        listed = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=100")
        return {ti["task_id"]: ti["state"] for ti in listed["task_instances"]}

    def wait_for(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            self.check_alive()
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}", pytrace=False)
            time.sleep(2)

    def finished(self, dag_id: str, run_id: str, timeout: float = CHAIN_TIMEOUT_S) -> str:
        """Wait until the run ends; its state. A failed run's task states are in the message."""
        states: list[str | None] = []

        def done() -> bool:
            states.append(self.run_state(dag_id, run_id))
            return states[-1] in {"success", "failed"}

        self.wait_for(f"{dag_id} run {run_id} to finish", done, timeout)
        return states[-1]

    def assert_success(self, dag_id: str, run_id: str, timeout: float = CHAIN_TIMEOUT_S) -> dict:
        state = self.finished(dag_id, run_id, timeout)
        tasks = self.task_states(dag_id, run_id)
        assert state == "success", (dag_id, run_id, tasks, self.task_log_tail(dag_id, run_id))
        return tasks

    def task_log_tail(self, dag_id: str, run_id: str) -> str:
        logs = sorted((self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}").rglob("*.log"))
        return "\n".join(f"--- {log}\n{log.read_text()[-1500:]}" for log in logs[-3:])


def _port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port (a closed port refuses; TIME_WAIT sockets do not count)."""
    with socket.socket() as probe_socket:
        probe_socket.settimeout(2)
        return probe_socket.connect_ex(("127.0.0.1", port)) != 0


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def receivers():
    with webhook_receiver() as webhook, smtp_receiver() as smtp:
        yield {"webhook": webhook, "smtp": smtp}


@pytest.fixture(scope="module")
def airflow(tmp_path_factory, airflow_python, kedro_pipelines, receivers):
    """Airflow's four components on 127.0.0.1 over a project copy; all stopped in teardown."""
    missing = [p for p in dag_ids() if p not in kedro_pipelines]
    assert not missing, f"pipelines without a registered Kedro pipeline: {missing}"
    started = time.monotonic()
    root = tmp_path_factory.mktemp("scheduler")
    project = project_copy(root, SYNTHETIC_ROWS, RUN_DATE[:7])
    home = root / "airflow_home"
    home.mkdir()
    port = free_port()
    (url, _), (smtp_port, _) = receivers["webhook"], receivers["smtp"]
    env = airflow_env(
        home,
        AIRFLOW__CORE__DAGS_FOLDER=str(project / "dags" / "dev"),
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__PARALLELISM="3",  # 2 cores: three algorithm tasks at most
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__PORT=str(port),
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{port}",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{port}/execution/",
        AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE="False",
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME="0.5",
        **alert_connections(url, smtp_port),
    )
    cluster = Airflow(home, env, port)
    cluster.project = project
    cluster.cli("db", "migrate")
    try:
        # One by one: the API server first, so the first task does not meet a booting API
        # (a read timeout on SQLite), then the components that need it.
        cluster.start("api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1")

        def api_up() -> bool:
            try:
                return "metadatabase" in cluster.api("GET", "/monitor/health")
            except OSError:
                return False

        cluster.wait_for("the API server", api_up, START_TIMEOUT_S)
        for component in COMPONENTS[1:]:
            cluster.start(component)
        expected = {_dev_id(p) for p in dag_ids()}

        def parsed() -> bool:
            listed = cluster.api("GET", "/dags?limit=100")["dags"]
            return expected <= {dag["dag_id"] for dag in listed}

        cluster.wait_for("the dev DAGs to be parsed", parsed, START_TIMEOUT_S)
        for dag_id in sorted(expected):
            cluster.api("PATCH", f"/dags/{dag_id}", {"is_paused": False})
        print(f"\nscheduler: Airflow up in {time.monotonic() - started:.0f} s")
        yield cluster
    finally:
        cluster.stop()
        alive = [name for name, proc in cluster.processes.items() if not _group_gone(proc.pid)]
        assert not alive, f"process groups left after stopping Airflow: {alive}"
        assert _port_free(port), f"port {port} still listening after stopping Airflow"
        print(f"\nscheduler: module took {time.monotonic() - started:.0f} s")


def _texts(receivers) -> list[str]:
    return [post["json"]["text"] for post in receivers["webhook"][1]]


def _subjects(receivers) -> list[str]:
    return [str(email.message_from_bytes(mail.content)["Subject"]) for mail in receivers["smtp"][1]]


def test_training_without_enough_data_ends_green_with_skipped_tasks(airflow, receivers):
    data, training = _dev_id("data_processing"), _dev_id("training")
    run_id = airflow.trigger(data, {"run_date": EARLY_DATE, **CONF})
    tasks = airflow.assert_success(data, run_id)
    # The first ingestion has no baseline to judge against: it is recorded, nothing is sent.
    assert tasks["check_data_volume"] == "success"
    recorded = json.loads(airflow.api("GET", f"/variables/{VOLUME_VARIABLE}")["value"])
    assert len(recorded) == 36, recorded  # 1999-01 .. 2001-12
    assert not any("unusual data volume" in text for text in _texts(receivers))
    # Three years of extracts: data processing's own gate does not trigger training ...
    assert tasks[f"trigger_{training}"] == "skipped", tasks
    assert airflow.run_state(training, _triggered_id(data, run_id)) is None
    # ... and a training run asked for anyway skips everything after its gate, and is green.
    run_id = airflow.trigger(training, {"run_date": EARLY_DATE})
    tasks = airflow.assert_success(training, run_id, timeout=300)
    assert tasks.pop("check_training_prerequisites") == "success"
    assert set(tasks.values()) == {"skipped"}, tasks


def test_cross_dag_triggers_run_the_chain_and_failures_alert(airflow, receivers):
    _, posts = receivers["webhook"]
    data, training = _dev_id("data_processing"), _dev_id("training")
    inference, monitoring = _dev_id("inference"), _dev_id("monitoring")
    started = time.monotonic()
    # The baseline as if 1999-2001 had brought ten times as many rows per extract: this run's
    # volume is then a tenth of the rolling median, an "unusual data volume" warning.
    recorded = json.loads(airflow.api("GET", f"/variables/{VOLUME_VARIABLE}")["value"])
    inflated = json.dumps({name: rows * 10 for name, rows in recorded.items()})
    airflow.api(
        "PATCH", f"/variables/{VOLUME_VARIABLE}", {"key": VOLUME_VARIABLE, "value": inflated}
    )
    data_run = airflow.trigger(data, {"run_date": RUN_DATE, **CONF})
    tasks = airflow.assert_success(data, data_run)
    assert set(tasks.values()) == {"success"}, tasks
    (volume,) = [text for text in _texts(receivers) if "unusual data volume" in text]
    assert volume.startswith(f"[WARNING] {data}: unusual data volume"), volume
    ratio = float(re.search(r"([\d.]+) x the median", volume).group(1))
    assert 0.05 < ratio < 0.2, volume  # about a tenth: same-sized monthly synthetic extracts

    # While training runs: three data processing runs fail in a row (a run_date Kedro refuses).
    failed = []
    for _ in range(3):
        run_id = airflow.trigger(data, {"run_date": "31.12.2008"})
        assert airflow.finished(data, run_id, timeout=300) == "failed"
        failed.append(run_id)

    training_run = _triggered_id(data, data_run)
    tasks = airflow.assert_success(training, training_run)
    assert set(tasks.values()) == {"success"}, tasks
    inference_run = _triggered_id(training, training_run)
    tasks = airflow.assert_success(inference, inference_run)
    assert set(tasks.values()) == {"success"}, tasks
    monitoring_run = _triggered_id(inference, inference_run)
    tasks = airflow.assert_success(monitoring, monitoring_run)
    assert tasks.pop("check_retrain_recommended") == "success", tasks
    assert set(tasks.values()) <= {"success", "skipped"}, tasks
    print(f"\nscheduler: chain data -> monitoring in {time.monotonic() - started:.0f} s")

    def delivered() -> bool:  # DAG callbacks run in the dag-processor, after the run ends
        texts = [post["json"]["text"] for post in posts]
        return sum(f"[WARNING] {data}: run failed" in text for text in texts) >= 3

    airflow.wait_for("three failure warnings on the webhook", delivered, 120)
    texts = [post["json"]["text"] for post in posts]
    for run_id in failed:
        assert any(run_id in text for text in texts), (run_id, texts)
    # Seed, critical: "data processing failed 3 times consecutively" -> webhook and e-mail.
    streak = f"[CRITICAL] {data}: 3 failed runs in a row"
    assert sum(text.startswith(streak) for text in texts) == 1, texts
    assert failed[-1] in next(text for text in texts if text.startswith(streak))
    subjects = _subjects(receivers)
    assert sum(subject.startswith(streak) for subject in subjects) == 1, subjects
    # Seed, info: "new model deployed" -> e-mail, once: the first training run promoted one.
    champion = [s for s in subjects if s.startswith(f"[INFO] {training}: new champion deployed")]
    assert len(champion) == 1, subjects


def test_a_retry_of_finished_tasks_changes_nothing(airflow):
    """Clearing data processing's last Kedro task and its trigger, as a retry or an operator's
    "clear" does, re-runs them: the same signal, and the training run it triggered is not run
    again (the trigger finds it and skips)."""
    data, training = _dev_id("data_processing"), _dev_id("training")
    runs = airflow.api("GET", f"/dags/{data}/dagRuns?limit=100")["dag_runs"]
    (data_run,) = [
        run["dag_run_id"]
        for run in runs
        if run["state"] == "success" and run["conf"].get("run_date") == RUN_DATE
    ]
    signal_file = airflow.project / "data/08_reporting/signals/new_data.json"
    before = json.loads(signal_file.read_text())
    assert before["train_recommended"], before
    trigger = f"trigger_{training}"
    airflow.api(
        "POST",
        f"/dags/{data}/clearTaskInstances",
        {
            "dry_run": False,
            "dag_run_id": data_run,
            "task_ids": ["decide_training_trigger", trigger],
            "only_failed": False,
            "reset_dag_runs": True,
        },
    )
    tasks = airflow.assert_success(data, data_run, timeout=600)
    decided = airflow.api(
        "GET", f"/dags/{data}/dagRuns/{data_run}/taskInstances/decide_training_trigger"
    )
    assert decided["try_number"] == 2, decided  # it did run again
    assert json.loads(signal_file.read_text()) == before
    assert tasks[trigger] == "skipped", tasks  # the run it triggered already exists
    runs = airflow.api("GET", f"/dags/{training}/dagRuns?limit=100")["dag_runs"]
    triggered = [run for run in runs if run["dag_run_id"].startswith(f"triggered_by__{data}__")]
    assert [(run["dag_run_id"], run["state"]) for run in triggered] == [
        (_triggered_id(data, data_run), "success")
    ]
