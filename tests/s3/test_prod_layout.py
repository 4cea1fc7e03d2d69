"""conf/prod maps the datasets to the design's S3 keys, with SSE-KMS for s3fs and Spark (no S3)."""

from __future__ import annotations

from pathlib import Path

import fsspec.config
import pytest

from readmit_kedro.io.s3 import s3_storage_options

P = "diab-readmit-123456"
EXPECTED = {  # dataset -> where conf/prod puts it (the design's layout)
    "bronze_extracts@pandas": f"s3://{P}-datamart/bronze/extracts",
    "silver_encounters@pandas": f"s3://{P}-datamart/silver/encounters",
    "gold_features@pandas": f"s3://{P}-datamart/gold/features",
    "gold_labels@partitions": f"s3://{P}-datamart/gold/labels",
    "gold_labels@spark": f"s3://{P}-datamart/gold/labels",
    "preprocessed_training_data": f"s3://{P}-datamart/gold/preprocessed",
    "xgboost.registered_model": f"s3://{P}-model-registry",
    "current_champion": f"s3://{P}-model-registry",
    "latest_registered_models": f"s3://{P}-model-registry",
    "current_champion_provenance": f"s3://{P}-model-registry",
    "dated_predictions": f"s3://{P}-predictions",
    "inference_prediction_store": f"s3://{P}-predictions/prediction_store.parquet",
    "monitoring_report_archive": f"s3://{P}-monitoring/reports",
    "retrain_signal": f"s3://{P}-monitoring/signals/retrain.json",
    "monitoring_alert_delivery_log": f"s3://{P}-monitoring/monitoring/alerts/delivery_log.json",
    "new_data_signal": f"s3://{P}-monitoring/signals/new_data.json",
}


@pytest.fixture
def prod_context(kedro_project: Path):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    saved = {k: dict(v) for k, v in fsspec.config.conf.items()}
    bootstrap_project(kedro_project)
    try:
        with KedroSession.create(project_path=kedro_project, env="prod") as session:
            yield session.load_context()
    finally:
        fsspec.config.conf.clear()
        fsspec.config.conf.update(saved)


def _location(description: dict) -> str:
    value = next(description[k] for k in ("filepath", "path", "root") if k in description)
    value = str(value)
    return value if "://" in value else f"s3://{value}"


def test_prod_datasets_use_the_design_buckets(prod_context) -> None:
    catalog = prod_context.catalog
    for name, expected in EXPECTED.items():
        assert _location(catalog.get(name)._describe()) == expected, name


def test_prod_sends_sse_kms_with_every_s3fs_client(prod_context) -> None:
    globals_ = prod_context.config_loader["globals"]
    kwargs = fsspec.config.conf["s3"]["s3_additional_kwargs"]
    assert kwargs == {"ServerSideEncryption": "aws:kms",
                      "SSEKMSKeyId": globals_["s3"]["sse_kms_key_id"]}  # fmt: skip
    assert "endpoint_url" not in fsspec.config.conf["s3"]  # AWS itself in prod


def test_prod_spark_uses_s3a_with_sse_kms_and_the_task_role(prod_context) -> None:
    spark = prod_context.config_loader["spark"]
    key = prod_context.config_loader["globals"]["s3"]["sse_kms_key_id"]
    assert spark["spark.hadoop.fs.s3a.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert spark["spark.hadoop.fs.s3a.encryption.algorithm"] == "SSE-KMS"
    assert spark["spark.hadoop.fs.s3a.encryption.key"] == key
    assert "ContainerCredentialsProvider" in spark["spark.hadoop.fs.s3a.aws.credentials.provider"]
    assert not [k for k in spark if "secret" in k.lower() or k.endswith("access.key")]


def test_s3_storage_options() -> None:
    assert s3_storage_options(None) == {}
    assert s3_storage_options(
        {"endpoint_url": "http://127.0.0.1:9", "sse_algorithm": "AES256"}
    ) == {
        "endpoint_url": "http://127.0.0.1:9",
        "s3_additional_kwargs": {"ServerSideEncryption": "AES256"},
    }
    with pytest.raises(ValueError, match="sse_algorithm"):
        s3_storage_options({"sse_kms_key_id": "alias/x"})
