"""Kedro hooks: parameters checked before a run reads anything, a SparkSession configured from
``conf/<env>/spark.yml`` (started only when needed), and the S3 settings of ``globals.yml`` applied
to every fsspec client."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.framework.project import pipelines as registered_pipelines
from kedro.pipeline import Pipeline

from readmit_kedro.io.s3 import configure_fsspec_s3
from readmit_kedro.run_context import ConfigError, RunDate

logger = logging.getLogger(__name__)


def parameter_checks() -> dict[str, Callable[[Any], Any]]:
    """Every parameter block a node checks itself, by key.

    The hook runs the same checks for all the blocks of the pipelines being run before any dataset
    loads: on Airflow each task runs one node, and a bad value for a later task must not let the
    earlier ones write. (Training's first node takes only parameters and checks its blocks itself.)
    Imported here, not at module level: settings.py imports this module for every Kedro command.
    """
    from readmit_kedro.pipelines.data_processing.gold import FeatureGroups
    from readmit_kedro.pipelines.data_processing.silver import QualityRules
    from readmit_kedro.pipelines.data_processing.trigger import check_training_trigger
    from readmit_kedro.pipelines.inference.nodes import check_inference_config
    from readmit_kedro.pipelines.monitoring.config import AlertingConfig, MonitoringConfig

    return {
        "data_quality": QualityRules.parse,
        "features": FeatureGroups.parse,
        "training_trigger": check_training_trigger,
        "inference_config": check_inference_config,
        "monitoring_config": MonitoringConfig.parse,
        "alerting": AlertingConfig.parse,
    }


class RunContextHooks:
    """Check ``run_date`` and every parameter block of the pipelines being run, before any load.

    All problems are reported in one :class:`~readmit_kedro.run_context.ConfigError`.
    """

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline, catalog) -> None:
        parameters = catalog.load("parameters")
        names = run_params.get("pipeline_names") or ["__default__"]
        blocks = sorted(
            {
                name.removeprefix("params:").split(".")[0]
                for pipeline_name in names
                for name in registered_pipelines[pipeline_name].inputs()
                if name.startswith("params:")
            }
        )
        checks = parameter_checks()
        problems = []
        for check, value in [(RunDate.parse, parameters.get("run_date"))] + [
            (checks[block], parameters.get(block)) for block in blocks if block in checks
        ]:
            try:
                check(value)
            except ConfigError as error:
                problems.append(str(error))
        if problems:
            raise ConfigError("\n".join(problems))


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
    """Return the active SparkSession, creating it with ``spark_conf`` if none is running.

    With a Spark Connect URL (``spark.remote`` or ``SPARK_REMOTE``) see :func:`_connect`.
    """
    from pyspark.sql import SparkSession

    options = session_options(spark_conf)
    remote = options.pop("spark.remote", None) or os.environ.get("SPARK_REMOTE")
    if remote is not None:
        return _connect(remote, options)
    builder = SparkSession.builder
    for key, value in options.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _connect(url: str, options: dict[str, str]):
    """A Spark Connect session on ``url`` with the session-level ``options`` set.

    ``SPARK_REMOTE`` is set to ``url`` for the rest of the process: every later
    ``SparkSession.builder.getOrCreate()`` (the published tables, kedro-datasets'
    ``SparkDatasetV2``) must reach the same server, and PySpark refuses one without a URL once a
    Connect session exists (``[CONNECT_URL_NOT_SET]``). Static options (``spark.driver.memory``,
    ``spark.ui.enabled``, ...) belong to the server, which was started with its own; they are
    logged, not sent (the server would refuse each with ``[CANNOT_MODIFY_CONFIG]``).
    """
    from pyspark.sql import SparkSession

    os.environ["SPARK_REMOTE"] = url
    spark = SparkSession.builder.remote(url).getOrCreate()
    static = []
    for key, value in options.items():
        if spark.conf.isModifiable(key):
            spark.conf.set(key, value)
        else:
            static.append(key)
    if static:
        logger.info("Spark Connect %s: left to the server (static): %s", url, ", ".join(static))
    return spark


def session_options(
    spark_conf: dict[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The builder options of an env's ``spark.yml``, as strings.

    For Spark Connect (``spark.remote: sc://host:15002`` in an env, or ``SPARK_REMOTE`` in the
    environment) ``spark.master`` is left out: the Connect server decides where it runs, and
    PySpark refuses a session given both (conf/base sets ``spark.master: local[*]``, which an env
    cannot unset by a soft merge).
    """
    environ = os.environ if environ is None else environ
    options = {key: str(value) for key, value in spark_conf.items()}
    if "spark.remote" in options or "SPARK_REMOTE" in environ:
        options.pop("spark.master", None)
    return options


class S3StorageHooks:
    """Apply globals ``s3`` (endpoint, region, SSE-KMS) to all fsspec S3 clients of the session."""

    @hook_impl
    def after_context_created(self, context) -> None:
        try:
            globals_ = context.config_loader["globals"]
        except KeyError:  # no globals.yml in any env
            return
        configure_fsspec_s3((globals_ or {}).get("s3"))
