"""Concurrent writers of one pointer against a real S3 API (moto's server): conditional PUTs."""

from __future__ import annotations

from readmit_kedro.io.registry import ModelRegistry
from tests.s3.conftest import BUCKETS
from tests.support.race import assert_concurrent_registrations_kept, assert_two_writers_lose_nothing


def test_two_writers_at_once_lose_nothing_on_s3(s3_server):
    options = {"client_kwargs": {"endpoint_url": s3_server.endpoint_url}}
    assert_two_writers_lose_nothing(f"s3://{BUCKETS['datamart']}/race", options)


def test_two_runs_registering_at_once_on_s3_both_land(s3_server, tmp_path):
    registry = ModelRegistry(
        f"s3://{BUCKETS['registry']}/race",
        {"client_kwargs": {"endpoint_url": s3_server.endpoint_url}},
        signing={"backend": "ed25519", "filepath": str(tmp_path / "signing.pem")},
    )
    assert_concurrent_registrations_kept(registry)
