"""data_processing on the real UCI file: counts, label rate, partitions, and a leakage audit."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from pyspark.sql import functions as F

from readmit_kedro.datasets.published import PandasPublishedTable, SparkPublishedTable
from readmit_kedro.pipelines.data_processing.nodes import build_gold_features
from tests.conftest import PROJECT_ROOT

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
    years = sorted(p.name for p in (real_project / "data/04_feature/gold_features").glob("v*/*"))
    assert [y for y in years if y.startswith("admission_year=")] == [
        f"admission_year={y}" for y in range(1999, 2009)
    ]
    assert set(features["data_source"]) == {"uci"}


def test_no_feature_looks_into_the_future(real_project, spark):
    """Recompute features with every later encounter removed: no value may change.

    Each cutoff is a real encounter of a returning patient; everything after it (by admission date,
    then encounter id) is dropped from silver before the features are rebuilt, and the rebuilt
    rows must equal the same rows of the full build, nulls included.
    """
    silver = SparkPublishedTable(filepath=str(real_project / "data/03_primary/silver_encounters"))
    silver = silver.load().cache()
    params = _features_params()
    full = build_gold_features(silver, params).cache()
    returning = full.where(F.col("prior_encounters") >= 2).orderBy("encounter_id")
    cutoffs = returning.sample(fraction=0.01, seed=7).limit(3).collect()
    assert len(cutoffs) == 3
    for cutoff in cutoffs:
        before = (F.col("admission_date") < F.lit(cutoff["admission_date"])) | (
            (F.col("admission_date") == F.lit(cutoff["admission_date"]))
            & (F.col("encounter_id") <= cutoff["encounter_id"])
        )
        rebuilt = build_gold_features(silver.where(before), params)
        expected = full.where(before)
        assert rebuilt.count() == expected.count() > 0
        assert rebuilt.exceptAll(expected).count() == 0, f"leak around {cutoff['encounter_id']}"


def _features_params() -> dict:
    from kedro.config import OmegaConfigLoader

    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="base")
    return loader["parameters"]["features"]
