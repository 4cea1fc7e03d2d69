"""Kedro hooks: a SparkSession configured from ``conf/<env>/spark.yml`` (started only when needed),
and the S3 settings of ``globals.yml`` applied to every fsspec client."""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.pipeline import Pipeline

from readmit_kedro.io.s3 import configure_fsspec_s3


class SparkHooks:
    """Start Spark from project config, but only for runs that touch a Spark dataset.

    Training, inference and monitoring are pandas-only; skipping the JVM keeps their start-up fast.
    The JVM starts in the background, so the pandas nodes that come first (bronze ingestion)
    overlap its several seconds of start-up; any ``@spark`` dataset waits for it before loading
    or saving, so no dataset can create a session without the project's configuration.
    """

    def __init__(self) -> None:
        self._spark_conf: dict[str, Any] = {}
        self._spark_started: Future | None = None

    @hook_impl
    def after_context_created(self, context) -> None:
        self._spark_conf = dict(context.config_loader.get("spark") or {})

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog) -> None:
        if any(name.endswith("@spark") for name in pipeline.datasets()):
            starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spark-start")
            self._spark_started = starter.submit(get_or_create_spark, self._spark_conf)
            starter.shutdown(wait=False)

    @hook_impl
    def before_dataset_loaded(self, dataset_name: str, node) -> None:
        self._wait_for_spark(dataset_name)

    @hook_impl
    def before_dataset_saved(self, dataset_name: str, data: Any, node) -> None:
        self._wait_for_spark(dataset_name)

    @hook_impl
    def after_pipeline_run(self) -> None:
        self._drop_run_caches()

    @hook_impl
    def on_pipeline_error(self) -> None:
        self._drop_run_caches()

    def _drop_run_caches(self) -> None:
        """End the run's cached tables with the run (the replay and notebooks keep the JVM).

        Spark matches a cached plan by table path, not by the files under it: a cache kept
        from one run would hand the next run on the same date stale bronze rows.
        """
        started, self._spark_started = self._spark_started, None
        if started is not None and started.done() and started.exception() is None:
            started.result().catalog.clearCache()

    def _wait_for_spark(self, dataset_name: str) -> None:
        """Block until the session is up (re-raising its start-up error) for Spark datasets."""
        if self._spark_started is not None and dataset_name.endswith("@spark"):
            self._spark_started.result()


def get_or_create_spark(spark_conf: dict[str, Any]):
    """Return the active SparkSession, creating it with ``spark_conf`` if none is running."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in spark_conf.items():
        builder = builder.config(key, str(value))
    return builder.getOrCreate()


class S3StorageHooks:
    """Apply globals ``s3`` (endpoint, region, SSE-KMS) to all fsspec S3 clients of the session."""

    @hook_impl
    def after_context_created(self, context) -> None:
        try:
            globals_ = context.config_loader["globals"]
        except KeyError:  # no globals.yml in any env
            return
        configure_fsspec_s3((globals_ or {}).get("s3"))
