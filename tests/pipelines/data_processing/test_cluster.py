"""data_processing on a Spark standalone cluster (a master and one worker on 127.0.0.1), and through
a Spark Connect server on 127.0.0.1, gives the gold tables local mode gives.

Both come from the pip pyspark distribution (``spark-class``, no sbin scripts). The runs are
``kedro run --env cluster`` / ``--env connect`` subprocesses: the pytest process already holds a
local SparkSession, which ``getOrCreate`` would reuse. The local-mode reference (two runs) is made
once for the module. On the cluster the executors run in their own JVM with their own working
directory, so a path only the driver resolves (a relative one, a driver temp folder) fails here;
over Connect the kedro process is a client only and the server's JVM is the driver. Not caught
here: the disk is shared, which a real cluster's is not (README "Running on a Spark cluster").
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.support.spark_cluster import (
    ConnectServer,
    Standalone,
    connect_server,
    standalone_cluster,
)

from ...conftest import PROJECT_ROOT, copy_project
from .test_pipeline import _gold, _land, _month, _read_json

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.e2e]

RUN_TIMEOUT_S = 600  # one `kedro run` against the cluster or the Connect server


@pytest.fixture(scope="module")
def standalone(tmp_path_factory) -> Iterator[Standalone]:
    """A standalone master and one worker (1 core, 1 GB), started but not awaited."""
    with standalone_cluster(tmp_path_factory.mktemp("standalone"), cores=1, memory="1g") as cluster:
        yield cluster


@pytest.fixture(scope="module")
def connect(tmp_path_factory) -> Iterator[ConnectServer]:
    """A Spark Connect server (local[2], 1 GB), started but not awaited. The server gets
    conf/base/spark.yml, which is where the static options a Connect client cannot set (driver
    memory and JVM options, UI) take effect; the master, the memory and code generation are the
    test's."""
    base = yaml.safe_load((PROJECT_ROOT / "conf/base/spark.yml").read_text())
    conf = {
        **{key: str(value) for key, value in base.items()},
        "spark.master": "local[2]",
        "spark.driver.memory": "1g",
        "spark.sql.codegen.wholeStage": "false",  # as in the cluster test: a dozen rows
    }
    with connect_server(tmp_path_factory.mktemp("connect"), conf) as server:
        yield server


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory, run_pipeline, spark) -> tuple[Path, float]:
    """The two runs of ``_run_history`` in local mode, in the test process (once per module, the
    daemons of the test asking for it starting meanwhile), and their seconds."""
    project = copy_project(tmp_path_factory.mktemp("local"))
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.chdir(project)
        seconds = _run_history(
            project, lambda run_date: run_pipeline(project, "data_processing", run_date=run_date)
        )
    print(f"two local data_processing runs: {seconds:.1f} s")
    return project, seconds


def _run_history(project: Path, run: Callable[[str], object]) -> float:
    """Two months, then (an incremental run) a new month and a corrected one; ``run(run_date)``
    runs data_processing. Returns the seconds the two runs took."""
    seconds = 0.0
    for step, run_date in enumerate(("1999-02-28", "1999-03-31")):
        if step == 0:
            _land_history(project, ["1999-01", "1999-02"])
        else:
            _land(project, "1999-03", _month("1999-03", 21))
            _resend_corrected(project)
        started = time.monotonic()
        run(run_date)
        seconds += time.monotonic() - started
    return seconds


def _kedro_run(project: Path, env_name: str, environ: dict[str, str], run_date: str) -> str:
    """``kedro run --env <env_name>`` in a fresh process (a driver or client of its own) with
    ``environ`` added; returns its output."""
    env = {
        **os.environ,
        **environ,
        "PYSPARK_PYTHON": sys.executable,  # the executors' Python workers: this interpreter
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_LOCAL_IP": "127.0.0.1",
    }
    command = [sys.executable, "-m", "kedro", "run", "--env", env_name]
    command += ["--pipelines", "data_processing", "--params", f"run_date={run_date}"]
    done = subprocess.run(
        command, cwd=project, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
    )
    assert done.returncode == 0, f"kedro run failed:\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    return done.stdout + done.stderr


def _assert_gold_equal(local: Path, other: Path) -> None:
    """Gold features and labels row for row, the correction applied, the same quality report."""
    for table in ("features", "labels"):
        expected, got = _gold(local, table), _gold(other, table)
        assert len(expected) == 12
        pd.testing.assert_frame_equal(got[expected.columns], expected)
    assert _gold(other, "labels").set_index("encounter_id").loc[2, "readmitted_30d"] == 0
    quality = "data/08_reporting/data_quality/data_quality_report.json"
    assert _read_json(other, quality) == _read_json(local, quality)


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


def test_cluster_gold_equals_local_gold(standalone, local_reference, tmp_path, record_property):
    local, local_seconds = local_reference
    project = copy_project(tmp_path)
    standalone.wait_ready()
    # A dozen rows: compiling whole-stage code on the executor would be most of the run
    environ = {
        "READMIT_SPARK_MASTER": standalone.master_url,
        "READMIT_SPARK_WHOLE_STAGE_CODEGEN": "false",
    }
    seconds = _run_history(
        project, lambda run_date: _kedro_run(project, "cluster", environ, run_date)
    )
    record_property("local_runs_s", round(local_seconds, 1))
    record_property("cluster_runs_s", round(seconds, 1))
    print(f"two data_processing runs on the cluster: {seconds:.1f} s")

    apps = standalone.state()["completedapps"]
    assert len(apps) == 2 and all(app["name"] == "readmit-kedro" for app in apps), apps
    executor_logs = sorted(standalone.logs.glob("work/app-*/*/stderr"))
    assert len(executor_logs) == 2  # one executor per run, on the worker
    assert all("Finished task" in log.read_text() for log in executor_logs)
    # The incremental run hands its driver rows (touched encounters, affected patients) to Spark
    # as Arrow: no Python worker starts on the executor (a Python list's RDD used to start them).
    assert "PythonRunner" not in executor_logs[1].read_text()
    _assert_gold_equal(local, project)


def test_spark_connect_gold_equals_local_gold(connect, local_reference, tmp_path, record_property):
    """``kedro run --env connect`` (READMIT_SPARK_REMOTE) through the Connect server: the kedro
    process starts no JVM, the server runs every job and writes silver and gold."""
    local, _ = local_reference
    project = copy_project(tmp_path)
    connect.wait_ready()
    environ = {"READMIT_SPARK_REMOTE": connect.url}
    outputs = []
    seconds = _run_history(
        project,
        lambda run_date: outputs.append(_kedro_run(project, "connect", environ, run_date)),
    )
    record_property("connect_runs_s", round(seconds, 1))
    print(f"two data_processing runs through Spark Connect: {seconds:.1f} s")

    # The hook connected (and kept the static options of spark.yml for the server) ...
    assert all(f"Spark Connect {connect.url}: left to the server" in o for o in outputs)
    # ... and the server ran both runs: one Connect session each, and the Parquet writes.
    log = connect.log.read_text()
    assert len(set(re.findall(r"sessionId: ([0-9a-f-]{36})", log))) == 2
    assert "FileFormatWriter" in log
    _assert_gold_equal(local, project)
