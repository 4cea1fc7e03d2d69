"""A real S3 and KMS API on loopback (moto's HTTP server): the design's four buckets and an
asymmetric KMS signing key (ECC_NIST_P256, SIGN_VERIFY) standing in for prod's model_signing key.

Not ``mock_aws``: the pipelines run through s3fs/aiobotocore over HTTP exactly as on AWS, so
request headers (SSE-KMS), multipart uploads and listings are the real client code paths.
"""

from __future__ import annotations

import logging
import os
import shutil
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import PROJECT_ROOT

BUCKET_PREFIX = "diab-readmit-123456"
BUCKETS = {
    "datamart": f"{BUCKET_PREFIX}-datamart",
    "registry": f"{BUCKET_PREFIX}-model-registry",
    "predictions": f"{BUCKET_PREFIX}-predictions",
    "monitoring": f"{BUCKET_PREFIX}-monitoring",
}
REGION = "ap-southeast-1"
KMS_KEY = "alias/readmit-s3test"  # moto records the key id it is sent; it does not check it
ENV = "s3test"

_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",  # moto's dummy credentials, not a secret
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",  # never probe an instance-metadata endpoint
}
_AWS_UNSET = ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ENDPOINT_URL",
              "AWS_ENDPOINT_URL_S3", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
              "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE")  # fmt: skip


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    client: object  # boto3 S3 client on the server
    signing_key_arn: str  # a KMS key on the server, as conf/prod's model_signing.key_id

    def keys(self, bucket: str) -> list[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        return sorted(
            obj["Key"]
            for page in paginator.paginate(Bucket=BUCKETS.get(bucket, bucket))
            for obj in page.get("Contents", [])
        )


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    """moto's ThreadedMotoServer on 127.0.0.1 (free port), dummy AWS env, the four buckets."""
    pytest.importorskip("moto.server", reason="moto[server] is needed for the S3 tests")
    import boto3
    import fsspec.config
    import s3fs
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    saved_env = {k: os.environ.get(k) for k in (*_AWS_ENV, *_AWS_UNSET)}
    saved_fsspec = {k: dict(v) for k, v in fsspec.config.conf.items()}
    os.environ.update(_AWS_ENV)
    for name in _AWS_UNSET:
        os.environ.pop(name, None)

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto's backends are per process, not per server: start from an empty account, whatever an
    # earlier module's server left (its buckets would make create_bucket fail).
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    client = boto3.client("s3", endpoint_url=endpoint, region_name=REGION)
    # moto keeps its state per process, not per server: start from an empty account
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    for bucket in BUCKETS.values():
        client.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
        )
        client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    kms = boto3.client("kms", endpoint_url=endpoint, region_name=REGION)
    signing_key = kms.create_key(
        KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY", Description="readmit model signing"
    )["KeyMetadata"]["Arn"]
    try:
        yield S3Server(endpoint, client, signing_key)
    finally:
        server.stop()
        fsspec.config.conf.clear()
        fsspec.config.conf.update(saved_fsspec)
        s3fs.S3FileSystem.clear_instance_cache()
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def make_s3test_env(project: Path, endpoint_url: str, signing_key_arn: str) -> Path:
    """``conf/s3test`` of a project copy: prod's storage layout, pointed at ``endpoint_url``.

    Prod's globals and catalogs are copied as they are (so the test follows every change to
    them); only the ``s3`` block (endpoint, test KMS key) and ``model_signing`` (endpoint, the
    server's signing key ``signing_key_arn``) change, and the training search is
    dev-sized (conf/dev/parameters_training.yml). Kedro has one run env over base, which is why
    this is generated instead of being a committed env that would drift from prod.
    """
    env = project / "conf" / ENV
    env.mkdir(parents=True, exist_ok=True)
    prod = PROJECT_ROOT / "conf" / "prod"
    for path in prod.glob("catalog*.yml"):
        shutil.copy(path, env / path.name)
    shutil.copy(PROJECT_ROOT / "conf" / "dev" / "parameters_training.yml", env)
    globals_ = yaml.safe_load((prod / "globals.yml").read_text())
    assert globals_["bucket_prefix"] == BUCKET_PREFIX, "tests/s3 assumes prod's bucket prefix"
    globals_["s3"] = {**globals_["s3"], "endpoint_url": endpoint_url, "region": REGION,
                      "sse_kms_key_id": KMS_KEY}  # fmt: skip
    assert globals_["model_signing"]["backend"] == "aws_kms", "prod signs with KMS"
    globals_["model_signing"] = {**globals_["model_signing"], "endpoint_url": endpoint_url,
                                 "key_id": signing_key_arn}  # fmt: skip
    (env / "globals.yml").write_text(yaml.safe_dump(globals_, sort_keys=False))
    return env
