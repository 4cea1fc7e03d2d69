"""data_processing on the real UCI file: counts, label rate, partitions, and a leakage audit."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from readmit_kedro.io.published import PandasPublishedTable, SparkPublishedTable
from readmit_kedro.pipelines.data_processing.gold import build_gold_features
from tests.conftest import PROJECT_ROOT
from tests.pipelines.data_processing.test_gold import assert_driver_gold_equals_spark_gold
from tests.pipelines.data_processing.test_silver import assert_driver_silver_equals_spark_silver

pytestmark = [pytest.mark.real_data, pytest.mark.e2e, pytest.mark.slow]


def _table(project: Path, relative: str) -> pd.DataFrame:
    return PandasPublishedTable(filepath=str(project / relative)).load()


def test_counts_add_up(real_project):
    report = json.loads(
        (real_project / "data/08_reporting/data_quality/data_quality_report.json").read_text()
    )
    assert report["bronze_rows"] == 101_766
    assert report["data_source"] == "uci"
    assert (
        report["silver_rows"] + report["quarantined_rows"] + report["duplicates_removed"]
        == report["bronze_rows"]
    )
    assert report["model_population"] == report["silver_rows"] - report["excluded_death_or_hospice"]
    bronze = list((real_project / "data/02_intermediate/bronze").glob("*.parquet"))
    assert len(bronze) == 120


def test_ordering_checks_flag_only_the_broken_half_years(real_project):
    """Stand-in dates follow encounter_id, which stops being time order in mid-2007 (issue 16)."""
    report = json.loads(
        (real_project / "data/08_reporting/data_quality/data_quality_report.json").read_text()
    )
    periods = [entry["period"] for entry in report["ordering"]["periods"]]
    assert periods == [f"{y}H{h}" for y in range(1999, 2009) for h in (1, 2)]
    flagged = {warning.split(":")[0] for warning in report["ordering_warnings"]}
    assert flagged & {"2007H2", "2008H1", "2008H2"}
    assert flagged <= {"2007H2", "2008H1", "2008H2"}, report["ordering_warnings"]


def test_gold_stores_join_one_to_one(real_project):
    features = _table(real_project, "data/04_feature/gold_features")
    labels = _table(real_project, "data/04_feature/gold_labels")
    report = json.loads(
        (real_project / "data/08_reporting/data_quality/data_quality_report.json").read_text()
    )
    assert len(features) == len(labels) == report["model_population"]
    assert features["encounter_id"].is_unique
    joined = features.merge(labels, on="encounter_id", validate="one_to_one")
    assert len(joined) == len(features)
    assert 0.10 < labels["readmitted_30d"].mean() < 0.125  # about 11% readmitted within 30 days
    assert sorted(features["admission_year"].unique()) == list(range(1999, 2009))
    months = {p.name for p in (real_project / "data/04_feature/gold_features").glob("v*/*=*")}
    assert len(months) == 120 and "admission_month=2008-12" in months  # partitioned by month
    assert set(features["data_source"]) == {"uci"}


@pytest.fixture(scope="module")
def real_silver(real_project, spark):
    table = SparkPublishedTable(filepath=str(real_project / "data/03_primary/silver_encounters"))
    silver = table.load().cache()
    yield silver
    silver.unpersist()


def test_no_feature_changes_when_later_encounters_are_removed(real_silver):
    """Rebuild gold from every prefix of history, one cut-off a year (2007 and 2008 included).

    No value of an encounter may change when encounters after it are removed. The cut is by
    (admission date, encounter id), the stand-in order: it cannot see a break of that order
    itself (the ordering checks of the quality report do), but it fails any feature that looks
    ahead in it, as a window with ``lead`` or an unbounded frame would.
    """
    params = _features_params()
    full = build_gold_features(real_silver, params).cache()
    by_year = Window.partitionBy(F.year("admission_date")).orderBy("admission_date", "encounter_id")
    ranked = full.withColumn("_rank", F.row_number().over(by_year))
    # an encounter a few weeks into each year
    cutoffs = ranked.where(F.col("_rank") == 1000).orderBy("admission_date").collect()
    assert [c["admission_year"] for c in cutoffs] == list(range(1999, 2009))
    digests = _row_digests(full).cache()
    for cutoff in cutoffs:
        before = (F.col("admission_date") < F.lit(cutoff["admission_date"])) | (
            (F.col("admission_date") == F.lit(cutoff["admission_date"]))
            & (F.col("encounter_id") <= cutoff["encounter_id"])
        )
        rebuilt = _row_digests(build_gold_features(real_silver.where(before), params))
        expected = digests.where(before)
        assert rebuilt.count() == expected.count() > 0
        assert rebuilt.exceptAll(expected).count() == 0, f"leak around {cutoff['encounter_id']}"
    full.unpersist()
    digests.unpersist()


def _row_digests(gold: DataFrame) -> DataFrame:
    """Each encounter's whole feature row as one 64-bit hash: comparing prefixes then shuffles
    three narrow columns instead of every feature (a leak would have to collide in 64 bits)."""
    columns = sorted(gold.columns)
    return gold.select("encounter_id", "admission_date", F.xxhash64(*columns).alias("_row"))


def test_no_feature_changes_when_other_encounters_labels_are_shuffled(real_silver):
    """Permute ``readmitted`` over all encounters: every feature of every encounter stays.

    A feature that reads other encounters' outcomes (a target encoding fitted on gold, or the
    label-implied order) would move; features of the encounter's own row cannot.
    """
    params = _features_params()
    labels = real_silver.select(
        F.row_number().over(Window.orderBy(F.rand(seed=11))).alias("_k"),
        F.col("readmitted").alias("_shuffled"),
    )
    rows = real_silver.withColumn("_k", F.row_number().over(Window.orderBy("encounter_id")))
    shuffled = (
        rows.join(labels, on="_k")
        .withColumn("readmitted", F.col("_shuffled"))
        .drop("_k", "_shuffled")
    )
    moved = shuffled.select("encounter_id", "readmitted").exceptAll(
        real_silver.select("encounter_id", "readmitted")
    )
    assert moved.count() > 30_000  # the permutation really moved labels
    original = build_gold_features(real_silver, params)
    assert build_gold_features(shuffled, params).exceptAll(original).count() == 0


def test_driver_gold_equals_spark_gold_on_the_real_silver(real_silver):
    """The service's evaluator (no Spark) gives the batch feature store, row for row."""
    driver = assert_driver_gold_equals_spark_gold(real_silver, _features_params())
    assert len(driver) > 99_000


def test_driver_silver_equals_spark_silver_on_real_landing_rows(
    real_project, spark, id_mapping, params
):
    """The service's silver rules (no Spark) give batch silver's verdicts and rows on a fifth of
    the real landing rows, as bronze holds them."""
    bronze = spark.read.parquet(str(real_project / "data/02_intermediate/bronze"))
    sample = bronze.sample(fraction=0.2, seed=20)
    valid = assert_driver_silver_equals_spark_silver(sample, id_mapping, params["data_quality"])
    assert len(valid) > 19_000


def _features_params() -> dict:
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="base")
    return loader["parameters"]["features"]
