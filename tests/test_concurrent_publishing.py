"""Two runs publishing at once (a manual run during a scheduled one, a backfill, an orphaned ECS
task): the later write must not silently drop the earlier run's update. Published tables, the
prediction store and the registry's champion, on local files (tests/s3: the same on S3)."""

from __future__ import annotations

import pytest
from kedro.io import DatasetError
from pyspark.sql import functions as F

from readmit_kedro.io.published import SparkPublishedTable, TableUpdate
from readmit_kedro.io.registry import ModelRegistry
from tests.support.race import (
    assert_a_clashing_publication_is_refused,
    assert_a_promotion_in_between_is_kept,
    assert_a_rollback_of_a_superseded_champion_is_refused,
    assert_a_training_decision_against_a_replaced_champion_is_refused,
    assert_concurrent_champion_changes_keep_one_history,
    assert_concurrent_publications_lose_nothing,
    assert_overlapping_publications_both_land,
    assert_two_writers_lose_nothing,
)


def _month(spark, month: str, *ids: int):
    rows = [(i, month) for i in ids]
    return spark.createDataFrame(rows, "encounter_id long, admission_month string")


def test_an_update_computed_from_a_superseded_version_is_refused(tmp_path, spark):
    table = SparkPublishedTable(filepath=str(tmp_path / "silver"))
    table.save(TableUpdate("admission_month", _month(spark, "1999-01", 1), state={"runs": 1}))
    first = table.snapshot()
    late_run = first  # computed its update from the first version, then got slow
    table.save(TableUpdate("admission_month", _month(spark, "1999-02", 2), base=first))
    current = table.snapshot()

    with pytest.raises(DatasetError, match="another run published in between"):
        table.save(TableUpdate("admission_month", _month(spark, "1999-03", 3), base=late_run))

    after = table.snapshot()
    assert after.version == current.version  # the other run's update stands
    assert sorted(r["encounter_id"] for r in table.load().collect()) == [1, 2]
    versions = sorted(p.name for p in (tmp_path / "silver").iterdir() if p.name.startswith("v"))
    assert versions == sorted({first.version, current.version})  # the refused one left nothing


def test_a_first_publication_races_with_another(tmp_path, spark):
    """Two first runs (nothing published yet): the second flip finds the pointer set."""
    table = SparkPublishedTable(filepath=str(tmp_path / "gold"))
    empty = table.snapshot()
    table.save(TableUpdate("admission_month", _month(spark, "1999-01", 1), base=empty))
    with pytest.raises(DatasetError, match="another run published in between"):
        rows = _month(spark, "1999-01", 9).withColumn("encounter_id", F.lit(9).cast("long"))
        table.save(TableUpdate("admission_month", rows, base=empty))
    assert [r["encounter_id"] for r in table.load().collect()] == [1]


def test_two_local_writers_at_once_lose_nothing(tmp_path):
    assert_two_writers_lose_nothing(str(tmp_path), {})


def test_two_runs_publishing_predictions_at_once_both_land(tmp_path):
    assert_overlapping_publications_both_land(str(tmp_path / "prediction_store.parquet"), {})


def test_a_run_whose_encounters_another_run_published_is_refused(tmp_path):
    assert_a_clashing_publication_is_refused(str(tmp_path / "prediction_store.parquet"), {})


def test_two_local_writers_of_the_prediction_store_lose_nothing(tmp_path):
    assert_concurrent_publications_lose_nothing(str(tmp_path / "store.parquet"), {}, 6)


@pytest.fixture
def make_registry(tmp_path):
    key = {"backend": "ed25519", "filepath": str(tmp_path / "signing.pem")}
    return lambda: ModelRegistry(str(tmp_path / "registry"), signing=key)


def test_a_promotion_computed_from_a_superseded_champion_is_refused(make_registry):
    assert_a_promotion_in_between_is_kept(make_registry)


def test_a_rollback_computed_from_a_superseded_champion_is_refused(make_registry):
    assert_a_rollback_of_a_superseded_champion_is_refused(make_registry)


def test_concurrent_champion_changes_keep_one_history(make_registry):
    assert_concurrent_champion_changes_keep_one_history(make_registry)


def test_a_training_decision_against_a_replaced_champion_is_refused(make_registry):
    assert_a_training_decision_against_a_replaced_champion_is_refused(make_registry)
