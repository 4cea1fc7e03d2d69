"""Two runs publishing the same table at once (a manual run during a scheduled one, a backfill,
an orphaned ECS task): the later flip must not silently drop the earlier run's update."""

from __future__ import annotations

import pytest
from kedro.io import DatasetError
from pyspark.sql import functions as F

from readmit_kedro.io.published import SparkPublishedTable, TableUpdate
from tests.support.race import assert_two_writers_lose_nothing


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
