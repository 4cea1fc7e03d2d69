"""Concurrent writers against a real S3 API (moto's server): conditional PUTs of a pointer, the
registry's index and champion, and the prediction store."""

from __future__ import annotations

from readmit_kedro.io.registry import ModelRegistry
from tests.s3.conftest import BUCKETS
from tests.support.race import (
    assert_a_clashing_publication_is_refused,
    assert_a_promotion_in_between_is_kept,
    assert_a_rollback_of_a_superseded_champion_is_refused,
    assert_concurrent_champion_changes_keep_one_history,
    assert_concurrent_publications_lose_nothing,
    assert_concurrent_registrations_kept,
    assert_overlapping_publications_both_land,
    assert_two_writers_lose_nothing,
)


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


def _options(s3_server) -> dict:
    return {"client_kwargs": {"endpoint_url": s3_server.endpoint_url}}


def test_two_runs_publishing_predictions_at_once_both_land_on_s3(s3_server):
    store = f"s3://{BUCKETS['predictions']}/overlap/prediction_store.parquet"
    assert_overlapping_publications_both_land(store, _options(s3_server))


def test_a_clashing_prediction_run_is_refused_on_s3(s3_server):
    store = f"s3://{BUCKETS['predictions']}/clash/prediction_store.parquet"
    assert_a_clashing_publication_is_refused(store, _options(s3_server))


def test_two_writers_of_the_prediction_store_lose_nothing_on_s3(s3_server):
    store = f"s3://{BUCKETS['predictions']}/race/prediction_store.parquet"
    assert_concurrent_publications_lose_nothing(store, _options(s3_server), 4)


def _registries(s3_server, tmp_path, prefix: str):
    return lambda: ModelRegistry(
        f"s3://{BUCKETS['registry']}/{prefix}",
        _options(s3_server),
        signing={"backend": "ed25519", "filepath": str(tmp_path / "signing.pem")},
    )


def test_a_promotion_from_a_superseded_champion_is_refused_on_s3(s3_server, tmp_path):
    assert_a_promotion_in_between_is_kept(_registries(s3_server, tmp_path, "promote"))


def test_a_rollback_from_a_superseded_champion_is_refused_on_s3(s3_server, tmp_path):
    assert_a_rollback_of_a_superseded_champion_is_refused(
        _registries(s3_server, tmp_path, "rollback")
    )


def test_concurrent_champion_changes_keep_one_history_on_s3(s3_server, tmp_path):
    assert_concurrent_champion_changes_keep_one_history(
        _registries(s3_server, tmp_path, "champion")
    )
