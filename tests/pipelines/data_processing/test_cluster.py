"""data_processing on a Spark standalone cluster (a master and one worker on 127.0.0.1) gives the
gold tables local mode gives.

The cluster comes from the pip pyspark distribution (``spark-class``, no sbin scripts). The cluster
runs are ``kedro run --env cluster`` subprocesses: the pytest process already holds a local
SparkSession, which ``getOrCreate`` would reuse. The executors then run in their own JVM with
their own working directory, so a path only the driver resolves (a relative one, a driver temp
folder) fails here. Not caught here: the disk is shared, which a real cluster's is not (README
"Running on a Spark cluster").
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from tests.support.net import free_port

from ...conftest import copy_project
from .test_pipeline import _gold, _land, _month, _read_json

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.e2e]

START_TIMEOUT_S = 120  # the master's and the worker's JVMs on a busy 2-core machine
RUN_TIMEOUT_S = 600  # one `kedro run` against the cluster


@dataclass(frozen=True)
class Standalone:
    master_url: str  # spark://127.0.0.1:<port>
    web_url: str  # the master's web UI, whose /json/ lists workers and applications
    logs: Path
    processes: list[subprocess.Popen]

    def state(self) -> dict:
        with urllib.request.urlopen(f"{self.web_url}/json/", timeout=5) as response:
            return json.load(response)

    def wait_ready(self) -> None:
        """Until a worker is ALIVE (the daemons start while the local-mode runs go on)."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            for process in self.processes:
                if process.poll() is not None:
                    pytest.fail(f"a Spark daemon exited ({process.args[1]}); logs in {self.logs}")
            try:
                workers = self.state()["workers"]
            except OSError:
                workers = []
            if any(w["state"] == "ALIVE" for w in workers):
                return
            if time.monotonic() > deadline:
                pytest.fail(f"no worker registered within {START_TIMEOUT_S} s; logs in {self.logs}")
            time.sleep(1)


def _spark_class(spark_home: Path, args: list[str], log: Path, env: dict) -> subprocess.Popen:
    """A Spark daemon in its own process group (the worker's executors join it)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(spark_home / "bin" / "spark-class"), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the daemon's whole group (a worker's executor JVMs too), then SIGKILL to what
    is left of the group (bounded: 20 s for a clean exit)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def standalone(tmp_path_factory) -> Iterator[Standalone]:
    """A standalone master and one worker (1 core, 1 GB), started but not awaited (see
    ``Standalone.wait_ready``), stopped with every JVM they started."""
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    root = tmp_path_factory.mktemp("standalone")
    env = {
        **os.environ,
        "SPARK_HOME": str(spark_home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_DIRS": str(root / "local"),  # shuffle and spill files
        "SPARK_LOG_DIR": str(root),
    }
    port, web_port, worker_web_port = free_port(), free_port(), free_port()
    master_url, web_url = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{web_port}"
    daemons = {
        "master": [
            "org.apache.spark.deploy.master.Master",
            *("--host", "127.0.0.1", "--port", str(port), "--webui-port", str(web_port)),
        ],
        "worker": [
            "org.apache.spark.deploy.worker.Worker",
            master_url,
            *("--host", "127.0.0.1", "--cores", "1", "--memory", "1g"),
            *("--webui-port", str(worker_web_port)),
            *("--work-dir", str(root / "work")),  # the executors' cwd, stdout and stderr
        ],
    }
    processes = []
    try:
        for name, args in daemons.items():
            processes.append(_spark_class(spark_home, args, root / f"{name}.log", env))
        yield Standalone(master_url, web_url, root, processes)
    finally:
        for process in reversed(processes):
            _stop(process)


def _kedro_run_on(cluster: Standalone, project: Path, run_date: str) -> None:
    """``kedro run --env cluster`` in a fresh process (a driver of its own) against ``cluster``."""
    env = {
        **os.environ,
        "READMIT_SPARK_MASTER": cluster.master_url,
        "PYSPARK_PYTHON": sys.executable,  # the executors' Python workers: this interpreter
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    command = [sys.executable, "-m", "kedro", "run", "--env", "cluster"]
    command += ["--pipelines", "data_processing", "--params", f"run_date={run_date}"]
    done = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    assert done.returncode == 0, f"kedro run failed:\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"


def _land_history(project: Path, months: list[str]) -> None:
    for i, month in enumerate(months):
        _land(project, month, _month(month, 1 + 10 * i))


def _resend_corrected(project: Path) -> None:
    """January re-sent: encounter 2 now unreadmitted, encounter 4 moved to patient 200.

    A correction takes silver's incremental merge (the previous version's rows looked up with
    Arrow on the driver, the affected patients' rows rebuilt by Spark), not a full rebuild.
    """
    frame = _month("1999-01", 1)
    frame.loc[1, "readmitted"] = "NO"
    frame.loc[3, "patient_nbr"] = "200"
    _land(project, "1999-01", frame)


def test_cluster_gold_equals_local_gold(
    standalone, tmp_path, monkeypatch, run_pipeline, spark, record_property
):
    projects = {mode: copy_project(_mkdir(tmp_path / mode)) for mode in ("local", "cluster")}
    seconds = {"local": 0.0, "cluster": 0.0}
    monkeypatch.chdir(projects["local"])
    for mode, project in projects.items():  # local first: the cluster starts meanwhile
        if mode == "cluster":
            standalone.wait_ready()
        for step, run_date in enumerate(("1999-02-28", "1999-03-31")):
            if step == 0:
                _land_history(project, ["1999-01", "1999-02"])
            else:  # an incremental run: a new month and a corrected one
                _land(project, "1999-03", _month("1999-03", 21))
                _resend_corrected(project)
            started = time.monotonic()
            if mode == "local":
                run_pipeline(project, "data_processing", run_date=run_date)
            else:
                _kedro_run_on(standalone, project, run_date)
            seconds[mode] += time.monotonic() - started
    for mode, value in seconds.items():
        record_property(f"{mode}_runs_s", round(value, 1))
    print(f"two data_processing runs: {seconds}")

    apps = standalone.state()["completedapps"]
    assert len(apps) == 2 and all(app["name"] == "readmit-kedro" for app in apps), apps
    executor_logs = sorted(standalone.logs.glob("work/app-*/*/stderr"))
    assert len(executor_logs) == 2  # one executor per run, on the worker
    assert all("Finished task" in log.read_text() for log in executor_logs)
    # The incremental run's Python lists (touched encounters) became DataFrames: the executor ran
    # Python workers, with PYSPARK_PYTHON.
    assert "PythonRunner" in executor_logs[1].read_text()
    for table in ("features", "labels"):
        local, cluster = (_gold(p, table) for p in projects.values())
        assert len(local) == 12
        pd.testing.assert_frame_equal(cluster[local.columns], local)
    assert (
        _gold(projects["cluster"], "labels").set_index("encounter_id").loc[2, "readmitted_30d"] == 0
    )
    quality = "data/08_reporting/data_quality/data_quality_report.json"
    assert _read_json(projects["cluster"], quality) == _read_json(projects["local"], quality)


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path
