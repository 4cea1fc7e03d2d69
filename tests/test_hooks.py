"""SparkHooks: the JVM starts only for pipelines with Spark datasets, and before any of them is used."""

from __future__ import annotations

from kedro.pipeline import Pipeline, node

from readmit_kedro.hooks import SparkHooks


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
