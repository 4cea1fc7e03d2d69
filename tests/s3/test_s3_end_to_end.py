"""The four pipelines on S3 with prod's catalog layout, against moto's S3 server on loopback.

Stages:
1. data_processing runs with local paths (Spark's s3a connector needs hadoop-aws jars, which are
   not available here) and its bronze/silver/gold folders are uploaded, as they are, to the
   design's datamart keys (``s3://<prefix>-datamart/{bronze/extracts,silver,gold}/<table>/``).
2. training (dev-sized search), inference and monitoring run with ``--env s3test``: prod's globals
   and catalogs with the endpoint on 127.0.0.1. Everything they read and write is on S3.
3. Checks: objects at the design's keys, the registry pointers, SSE-KMS on every object the
   pipelines wrote, nothing written to the local ``data/`` folder, a second inference run adds no
   duplicate predictions, and no encounter/patient id in any INFO log line.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import pytest

from tests.s3.conftest import BUCKETS, ENV, KMS_KEY, make_s3test_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

RUN_DATE = "2008-12-31"
ALGORITHMS = ("logistic_regression", "random_forest", "xgboost")
SPARK_STAGE = {  # local folder of the base catalog -> datamart prefix of conf/prod
    "data/02_intermediate/bronze": "bronze/extracts",
    "data/03_primary/silver_encounters": "silver/encounters",
    "data/03_primary/silver_quarantine": "silver/quarantine",
    "data/04_feature/gold_features": "gold/features",
    "data/04_feature/gold_labels": "gold/labels",
}


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_pipelines_on_s3(
    s3_server, kedro_project: Path, run_pipeline, spark, capfd, caplog
) -> None:
    import s3fs

    from readmit_kedro.landing.acquire import acquire
    from readmit_kedro.landing.monthly import land

    caplog.set_level("INFO")
    project = kedro_project

    # ---- 1. Spark stage locally, then published to the S3 datamart as the prod job would
    raw = acquire(project / "data" / "01_raw", synthetic_rows=3000)
    land(raw.path, project / "data" / "01_raw" / "landing")
    run_pipeline(project, "data_processing")  # default env: base paths under the project copy
    fs = s3fs.S3FileSystem(
        endpoint_url=s3_server.endpoint_url,
        s3_additional_kwargs={"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": KMS_KEY},
    )
    for local, prefix in SPARK_STAGE.items():
        assert (project / local).is_dir(), f"data_processing did not write {local}"
        fs.put(str(project / local) + "/", f"{BUCKETS['datamart']}/{prefix}/", recursive=True)
    assert "gold/features/_LATEST" in s3_server.keys("datamart")
    # ... with the quality report the run wrote next to it (monitoring shows its warnings)
    report = "data_quality/data_quality_report.json"
    fs.put(str(project / "data/08_reporting" / report), f"{BUCKETS['monitoring']}/{report}")

    # ---- 2. everything from gold on, on S3
    make_s3test_env(project, s3_server.endpoint_url, s3_server.signing_key_arn)
    local_before = _files(project / "data")
    for pipeline in ("training", "inference", "monitoring"):
        run_pipeline(project, pipeline, env=ENV, run_date=RUN_DATE)
    assert _files(project / "data") == local_before, "an s3test run wrote to the local disk"

    # ---- 3a. design keys
    datamart = s3_server.keys("datamart")
    snapshots = {k.split("/")[2] for k in datamart if k.startswith("gold/preprocessed/train_data_")}
    assert len(snapshots) == 1, datamart
    (snapshot,) = snapshots
    latest_txt = (
        s3_server.client.get_object(Bucket=BUCKETS["datamart"], Key="gold/preprocessed/latest.txt")[
            "Body"
        ]
        .read()
        .decode()
        .strip()
    )
    assert latest_txt == snapshot
    for name in ("train_processed.parquet", "test_processed.parquet", "oot_processed.parquet",
                 "preprocessor.pkl", "metadata.json"):  # fmt: skip
        assert f"gold/preprocessed/{snapshot}/{name}" in datamart

    registry = s3_server.keys("registry")
    for algorithm in ALGORITHMS:
        assert f"{algorithm}/versions.json" in registry
        assert f"{algorithm}/latest" in registry
        assert any(re.fullmatch(rf"{algorithm}/v\d{{8}}T\d+Z/model\.pkl", k) for k in registry)
    assert "metadata/latest.json" in registry
    assert any(re.fullmatch(r"metadata/metadata_\d{8}T\d+Z\.json", k) for k in registry)
    # champion reference profile (its exact key belongs to the monitoring catalog)
    assert any(k.endswith("reference_profile.json") for k in registry), registry

    predictions = s3_server.keys("predictions")
    assert f"predictions_{RUN_DATE}.parquet" in predictions
    assert "prediction_store.parquet" in predictions

    monitoring = s3_server.keys("monitoring")
    for key in (f"reports/report_{RUN_DATE}.json", "reports/latest.json",
                f"reports/report_{RUN_DATE}.html", "signals/retrain.json",
                "signals/inference.json"):  # fmt: skip
        assert key in monitoring, monitoring

    # ---- 3b. SSE-KMS on every object the pipelines wrote (and on the Spark-stage upload)
    for bucket in BUCKETS:
        for key in s3_server.keys(bucket):
            head = s3_server.client.head_object(Bucket=BUCKETS[bucket], Key=key)
            assert head.get("ServerSideEncryption") == "aws:kms", (bucket, key)
            assert head.get("SSEKMSKeyId", "").endswith(KMS_KEY), (bucket, key)

    # ---- 3c. a second inference run of the same day adds no duplicate predictions
    def store() -> pd.DataFrame:
        body = s3_server.client.get_object(
            Bucket=BUCKETS["predictions"], Key="prediction_store.parquet"
        )["Body"].read()
        return pd.read_parquet(io.BytesIO(body))

    first = store()
    assert len(first) > 0 and first["encounter_id"].is_unique
    run_pipeline(project, "inference", env=ENV, run_date=RUN_DATE)
    second = store()
    assert second["encounter_id"].is_unique
    assert len(second) == len(first)
    assert s3_server.keys("predictions") == predictions  # no extra dated file

    # ---- 3d. no patient-level row in any INFO log line of the four runs
    ids = {str(i) for i in (*second["encounter_id"], *second["patient_nbr"])}
    captured = capfd.readouterr()
    info_lines = [r.getMessage() for r in caplog.records if r.levelname == "INFO"]
    info_lines += [line for line in (captured.out + captured.err).splitlines() if " INFO " in line]
    leaks = [line for line in info_lines if _integers(line) & ids]
    assert not leaks, leaks[:5]


def _integers(text: str) -> set[str]:
    """Whole integer tokens of ``text`` (parts of floats, timestamps or hashes excluded)."""
    return set(re.findall(r"(?<![\w.+/:-])\d+(?![\w.:-])", text))
