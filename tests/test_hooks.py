"""SparkHooks: the JVM starts only for pipelines with Spark datasets, and before any of them is used.
RunContextHooks: parameters are checked before anything is read."""

from __future__ import annotations

import pytest
from kedro.io.data_catalog import DataCatalog
from kedro.pipeline import Pipeline, node

from readmit_kedro.hooks import SparkHooks, get_or_create_spark, session_options

_real_load = DataCatalog.load


def _identity(value):
    return value


def test_pandas_only_pipeline_starts_no_spark():
    hooks = SparkHooks()
    hooks.before_pipeline_run({}, Pipeline([node(_identity, "a", "b", name="pandas")]), None)
    assert hooks._spark_started is None
    hooks.before_dataset_loaded("a", None)  # nothing to wait for


def test_spark_dataset_waits_for_the_session_started_in_background(spark):
    hooks = SparkHooks()
    pipeline = Pipeline([node(_identity, "raw", "table@spark", name="to_spark")])
    hooks.before_pipeline_run({}, pipeline, None)
    started = hooks._spark_started
    assert started is not None
    hooks.before_dataset_loaded("raw", None)  # a pandas dataset does not wait
    hooks.before_dataset_saved("table@spark", None, None)
    assert started.done() and started.result() is spark  # getOrCreate reused the running session


@pytest.mark.parametrize(
    ("conf", "environ"),
    [
        ({"spark.remote": "sc://127.0.0.1:15002"}, {}),
        ({}, {"SPARK_REMOTE": "sc://127.0.0.1:15002"}),
    ],
    ids=["spark.remote-in-spark.yml", "SPARK_REMOTE-in-environment"],
)
def test_spark_connect_drops_the_base_master(conf, environ):
    """PySpark refuses spark.master with spark.remote; base's local[*] cannot be unset by an env."""
    base = {"spark.master": "local[*]", "spark.sql.shuffle.partitions": 8}
    options = session_options({**base, **conf}, environ)
    assert "spark.master" not in options
    assert options["spark.sql.shuffle.partitions"] == "8"


@pytest.mark.parametrize(
    ("conf", "environ"),
    [
        ({"spark.remote": "sc://127.0.0.1:15002"}, {}),
        ({}, {"SPARK_REMOTE": "sc://127.0.0.1:15002"}),
    ],
    ids=["spark.remote-in-spark.yml", "SPARK_REMOTE-in-environment"],
)
def test_a_connect_url_opens_a_connect_session_with_the_other_options(conf, environ, monkeypatch):
    """The URL goes to the Connect session; the other options (master left out) are set on it."""
    opened = []
    monkeypatch.setattr("readmit_kedro.hooks._connect", lambda *args: opened.append(args))
    monkeypatch.delenv("SPARK_REMOTE", raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    get_or_create_spark({"spark.master": "local[*]", "spark.sql.shuffle.partitions": 8, **conf})
    assert opened == [("sc://127.0.0.1:15002", {"spark.sql.shuffle.partitions": "8"})]


def test_a_master_other_than_local_is_passed_on():
    options = session_options({"spark.master": "spark://127.0.0.1:7077"}, {})
    assert options == {"spark.master": "spark://127.0.0.1:7077"}


def test_a_bad_parameter_of_a_later_task_stops_the_first_task_before_it_reads(
    kedro_project, monkeypatch
):
    """On Airflow a task runs one node; a bad value any task of the DAG uses stops them all."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    from readmit_kedro.run_context import ConfigError

    bootstrap_project(kedro_project)
    loaded = []
    monkeypatch.setattr(
        "kedro.io.data_catalog.DataCatalog.load",
        lambda self, name, *a, **k: loaded.append(name) or _real_load(self, name, *a, **k),
    )
    bad = {"run_date": "2008-06-31", "inference_config": {"batch_size": 0}}
    with (
        KedroSession.create(project_path=kedro_project, runtime_params=bad) as session,
        pytest.raises(ConfigError) as error,
    ):
        session.run(pipeline_names=["inference"], node_names=["publish_predictions"])
    message = str(error.value)
    assert "run_date '2008-06-31' is not an ISO date" in message
    assert "inference_config.batch_size must be an int >= 1, got 0" in message
    assert loaded == ["parameters"]  # no dataset was read
