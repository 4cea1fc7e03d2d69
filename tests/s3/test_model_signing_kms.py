"""Prod's model signing: AWS KMS asymmetric sign/verify, against moto's KMS and S3 server.

The registry, a training snapshot and a candidate pickle live in the design's buckets; a writer
of those buckets (boto3 here, as any role with s3:PutObject) swaps what will be unpickled and
rewrites the digest beside it. Only a holder of kms:Sign on the configured key could make that
verify, so the loads refuse, and the planted pickle never runs.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import boto3
import pandas as pd
import pytest
import yaml
from kedro.io import DatasetError
from sklearn.linear_model import LogisticRegression

from readmit_kedro.io.model_store import (
    SignedPickleDataset,
    TrainingSnapshot,
    TrainingSnapshotDataset,
)
from readmit_kedro.io.registry import ModelIntegrityError, ModelRegistry
from readmit_kedro.io.signing import AwsKmsKey, SignatureError, signing_key
from tests.conftest import PROJECT_ROOT
from tests.s3.conftest import BUCKETS, REGION

REGISTRY = BUCKETS["registry"]
DATAMART = BUCKETS["datamart"]


class _Planted:
    """Unpickling this writes a marker file: proof that the attacker's code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


@pytest.fixture
def kms_key(s3_server) -> AwsKmsKey:
    return AwsKmsKey(s3_server.signing_key_arn, REGION, s3_server.endpoint_url)


@pytest.fixture
def options(s3_server) -> dict:
    return {"endpoint_url": s3_server.endpoint_url}


def _get(s3_server, bucket: str, key: str) -> bytes:
    return s3_server.client.get_object(Bucket=bucket, Key=key)["Body"].read()


def _put(s3_server, bucket: str, key: str, body: bytes) -> None:
    s3_server.client.put_object(Bucket=bucket, Key=key, Body=body)


@pytest.fixture
def registry(s3_server, kms_key, options, request) -> ModelRegistry:
    root = f"s3://{REGISTRY}/{request.node.name}"
    reg = ModelRegistry(root, options, signing=kms_key)
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    record = reg.register("xgboost", model, metrics={"test": {"roc_auc": 0.7}}, metadata={})
    reg.promote("xgboost", record["version"], "first")
    return reg


def test_prod_conf_signs_with_a_kms_key_arn():
    settings = yaml.safe_load((PROJECT_ROOT / "conf/prod/globals.yml").read_text())
    key = signing_key(settings["model_signing"])
    assert isinstance(key, AwsKmsKey)
    assert settings["model_signing"]["key_id"].startswith("arn:aws:kms:")
    assert ":key/" in settings["model_signing"]["key_id"]  # a key ARN, not a re-pointable alias


def test_kms_signed_registry_loads(registry):
    champion = registry.load_champion()
    assert champion.record["signature"]["algorithm"] == "ECDSA_SHA_256"
    assert champion.model.predict([[1.0]]).tolist() == [1]


def test_a_bundle_and_index_rewritten_in_the_bucket_are_refused(
    registry, s3_server, request, tmp_path
):
    prefix = request.node.name
    record = registry.record("xgboost")
    evil = pickle.dumps(_Planted(tmp_path / "PWNED"))
    _put(s3_server, REGISTRY, f"{prefix}/xgboost/{record['version']}/model.pkl", evil)
    index = json.loads(_get(s3_server, REGISTRY, f"{prefix}/xgboost/versions.json"))
    index[-1]["sha256"] = hashlib.sha256(evil).hexdigest()
    _put(s3_server, REGISTRY, f"{prefix}/xgboost/versions.json", json.dumps(index).encode())
    with pytest.raises(SignatureError, match=r"does not verify with the KMS key arn:aws:kms:"):
        registry.load_champion()
    assert not (tmp_path / "PWNED").exists()


def test_records_signed_with_another_kms_key_are_refused(registry, s3_server, options):
    kms = boto3.client("kms", endpoint_url=s3_server.endpoint_url, region_name=REGION)
    other = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    forger = ModelRegistry(
        registry.root, options, signing=AwsKmsKey(other, REGION, s3_server.endpoint_url)
    )
    forger.register("xgboost", LogisticRegression().fit([[0.0], [1.0]], [0, 1]), metrics={},
                    metadata={})  # fmt: skip
    with pytest.raises(SignatureError, match="does not verify"):
        registry.load("xgboost")


def test_a_snapshot_on_s3_with_a_rewritten_metadata_is_refused(
    s3_server, kms_key, options, tmp_path
):
    dataset = TrainingSnapshotDataset(
        path=f"s3://{DATAMART}/signing-test/preprocessed", credentials=options, signing=kms_key
    )
    frame = pd.DataFrame({"a": [1.0]})
    dataset.save(TrainingSnapshot(frame, frame, frame, {"ok": 1}, {"processed_features": ["a"]}))
    assert dataset.load().preprocessor == {"ok": 1}
    version = _get(s3_server, DATAMART, "signing-test/preprocessed/latest.txt").decode()
    evil = pickle.dumps(_Planted(tmp_path / "PWNED"))
    folder = f"signing-test/preprocessed/{version}"
    _put(s3_server, DATAMART, f"{folder}/preprocessor.pkl", evil)
    meta = json.loads(_get(s3_server, DATAMART, f"{folder}/metadata.json"))
    meta["files"]["preprocessor.pkl"] = hashlib.sha256(evil).hexdigest()
    _put(s3_server, DATAMART, f"{folder}/metadata.json", json.dumps(meta).encode())
    with pytest.raises(DatasetError, match="does not verify with the KMS key"):
        dataset.load()
    assert not (tmp_path / "PWNED").exists()


def test_a_snapshot_window_on_s3_streams_in_batches_after_its_hash_check(
    s3_server, kms_key, options
):
    dataset = TrainingSnapshotDataset(
        path=f"s3://{DATAMART}/stream-test/preprocessed", credentials=options, signing=kms_key,
        row_group_rows=2,
    )  # fmt: skip
    frame = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 5.0]})
    dataset.save(TrainingSnapshot(frame, frame, frame, None, {"processed_features": ["a"]}))
    with dataset.load().batches("train", 2) as read:
        assert [len(batch) for batch in read(["a"])] == [2, 2, 1]
    version = _get(s3_server, DATAMART, "stream-test/preprocessed/latest.txt").decode()
    _put(s3_server, DATAMART, f"stream-test/preprocessed/{version}/train_processed.parquet", b"x")
    with (
        pytest.raises(ModelIntegrityError, match="refusing to read"),
        dataset.load().batches("train", 2),
    ):
        pytest.fail("a batch reader was handed out for a file that does not verify")


def test_a_candidate_pickle_on_s3_swapped_with_its_signature_is_refused(
    s3_server, kms_key, options, tmp_path
):
    key = "work/06_models/candidates/xgboost/estimator.pkl"
    dataset = SignedPickleDataset(
        filepath=f"s3://{DATAMART}/{key}", credentials=options, signing=kms_key
    )
    dataset.save({"fitted": True})
    assert dataset.load() == {"fitted": True}
    evil = pickle.dumps(_Planted(tmp_path / "PWNED"))
    _put(s3_server, DATAMART, key, evil)
    statement = json.loads(_get(s3_server, DATAMART, f"{key}.sig.json"))
    statement["sha256"] = hashlib.sha256(evil).hexdigest()
    _put(s3_server, DATAMART, f"{key}.sig.json", json.dumps(statement).encode())
    with pytest.raises(DatasetError, match="does not verify with the KMS key"):
        dataset.load()
    assert not (tmp_path / "PWNED").exists()


def test_the_registry_cli_signs_a_promotion_with_kms(registry, s3_server, monkeypatch):
    from click.testing import CliRunner

    from readmit_kedro.commands.registry import registry as registry_cli

    version = registry.register("random_forest", LogisticRegression().fit([[0.0], [1.0]], [0, 1]),
                                metrics={}, metadata={})["version"]  # fmt: skip
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_server.endpoint_url)  # S3 and KMS of the server
    env = {"READMIT_SIGNING_KMS_KEY_ID": s3_server.signing_key_arn}
    args = ["promote", "random_forest", version, "--root", registry.root, "--reason", "by hand"]
    result = CliRunner().invoke(registry_cli, args, env=env)
    assert result.exit_code == 0, result.output
    assert registry.load_champion().record["version"] == version  # verifies with the KMS key

    result = CliRunner().invoke(registry_cli, ["rollback", "--root", registry.root])  # no KMS key
    assert result.exit_code == 1
    assert "does not exist" in result.output or "does not verify" in result.output
