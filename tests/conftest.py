"""Shared fixtures: one local SparkSession per test session, throwaway Kedro projects, real data."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # keep Spark on loopback


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Under ``make test`` (``-n 2``) each test module runs whole on one worker.

    A module's fixtures are then built once (test_scheduler.py's tests also follow one another
    through its Airflow). The ``test_real_data.py`` modules share the session's real-data project
    (landing and processing the whole UCI file), so they run on one worker too and it is built
    once. (xdist's ``--dist loadgroup`` would say this with marks, but it rewrites
    ``item._nodeid``, which pytest 9.2 no longer reads.)
    """
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "real_data" if module.endswith("/test_real_data.py") else module

    return ModuleScheduling(config, log)


@pytest.fixture(scope="session")
def spark():
    """A small local Spark with the UI off; Kedro's hook reuses it through getOrCreate."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("readmit-kedro-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def copy_project(destination: Path) -> Path:
    """A copy of the project's config (without conf/local) in ``destination``.

    Catalog paths are relative (``data/...``), so pipelines run from there read and write only
    the copy; the package itself is the installed one.
    """
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, destination / name)
    shutil.copytree(
        PROJECT_ROOT / "conf", destination / "conf", ignore=shutil.ignore_patterns("local")
    )
    (destination / "conf" / "local").mkdir()
    (destination / "src").mkdir()  # bootstrap_project expects a source dir
    return destination


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """``readmit replay`` sends logging to a file (readmit_kedro.commands.console); undo it after a test."""
    root, replay = logging.getLogger(), logging.getLogger("readmit_kedro.commands.replay")
    saved = (root.handlers[:], root.level, replay.handlers[:], replay.level)
    yield
    for handler in root.handlers + replay.handlers:
        if handler not in saved[0] + saved[2]:
            handler.close()
    root.handlers[:], replay.handlers[:] = saved[0], saved[2]
    root.setLevel(saved[1])
    replay.setLevel(saved[3])


@pytest.fixture
def kedro_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project copy in a temporary folder, made the working directory."""
    monkeypatch.chdir(copy_project(tmp_path))
    yield tmp_path


@pytest.fixture(scope="session")
def real_data_path() -> Path:
    """The real UCI file named by READMIT_RAW_DATA; CI sets READMIT_REQUIRE_REAL_DATA=1 to insist."""
    value = os.environ.get("READMIT_RAW_DATA")
    if value and Path(value).is_file():
        return Path(value)
    reason = f"real data not configured: READMIT_RAW_DATA={value!r} is not a file"
    if os.environ.get("READMIT_REQUIRE_REAL_DATA") == "1":
        pytest.fail(reason + " (READMIT_REQUIRE_REAL_DATA=1: real-data tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def run_pipeline():
    """Run one pipeline of a project copy in-process, the way ``kedro run`` does (stateless: any
    scope may use it)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    def run(project: Path, pipeline: str, env: str | None = None, **params) -> dict:
        bootstrap_project(project)
        with KedroSession.create(project_path=project, env=env, runtime_params=params) as session:
            return session.run(pipeline_names=[pipeline])

    return run


@pytest.fixture(scope="session")
def real_project(tmp_path_factory, real_data_path, spark) -> Path:
    """A project copy that acquired, landed and processed the whole real history, once per session.

    The real-data tests of later pipelines (training, inference) run on its gold in turn.
    """
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from readmit_kedro.landing.acquire import acquire
    from readmit_kedro.landing.monthly import land

    project = copy_project(tmp_path_factory.mktemp("real"))
    cwd = os.getcwd()
    os.chdir(project)
    try:
        acquire(project / "data/01_raw", source=real_data_path)
        land(project / "data/01_raw/diabetic_data.csv.gz", project / "data/01_raw/landing")
        bootstrap_project(project)
        with KedroSession.create(project_path=project) as session:
            session.run(pipeline_names=["data_processing"])
    finally:
        os.chdir(cwd)
    return project
