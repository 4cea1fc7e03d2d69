"""Kedro hooks: a SparkSession configured from ``conf/<env>/spark.yml``, started only when needed."""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline


class SparkHooks:
    """Start Spark from project config, but only for runs that touch a Spark dataset.

    Training, inference and monitoring are pandas-only; skipping the JVM keeps their start-up fast.
    """

    def __init__(self) -> None:
        self._spark_conf: dict[str, Any] = {}

    @hook_impl
    def after_context_created(self, context) -> None:
        self._spark_conf = dict(context.config_loader.get("spark") or {})

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog) -> None:
        if any(name.endswith("@spark") for name in pipeline.datasets()):
            get_or_create_spark(self._spark_conf)


def get_or_create_spark(spark_conf: dict[str, Any]):
    """Return the active SparkSession, creating it with ``spark_conf`` if none is running."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in spark_conf.items():
        builder = builder.config(key, str(value))
    return builder.getOrCreate()
