"""Project settings: config loading, hooks, and telemetry kept off (this project handles patient data)."""

from kedro.config import OmegaConfigLoader
from omegaconf.resolvers import oc

from readmit_kedro.commands.console import filter_third_party_warnings
from readmit_kedro.hooks import RunContextHooks, S3StorageHooks, SparkHooks

filter_third_party_warnings()  # the list and why: readmit_kedro.commands.console

# S3StorageHooks: globals `s3` (endpoint, SSE-KMS) for every s3fs client (conf/prod/globals.yml).
# RunContextHooks last: pluggy calls the last registered first, so parameters are checked before
# Spark starts.
HOOKS = (SparkHooks(), S3StorageHooks(), RunContextHooks())

# Hospital data: never phone home, whatever the user's machine allows (``.telemetry`` says the same).
DISABLE_HOOKS_FOR_PLUGINS = ("kedro-telemetry",)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "config_patterns": {"spark": ["spark*", "spark*/**"]},
    # An env overrides single keys (e.g. conf/dev shrinks the search) instead of whole top-level blocks.
    "merge_strategy": {"parameters": "soft", "spark": "soft", "airflow": "soft"},
    # ${oc.env:VAR} in every config file, not only credentials: conf/cluster/spark.yml takes the
    # master URL from READMIT_SPARK_MASTER (an unset variable fails the run naming it).
    "custom_resolvers": {"oc.env": oc.env},
}
