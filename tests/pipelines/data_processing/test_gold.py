"""Gold: the feature and label stores built from silver, and the checks of ``features``."""

from __future__ import annotations

import copy
import re

import pandas as pd
import pytest

from readmit_kedro.pipelines.data_processing.gold import (
    FeatureGroups,
    build_gold_features,
    build_gold_labels,
    gold_features_frame,
)
from readmit_kedro.run_context import ConfigError
from readmit_kedro.schema import (
    CATEGORICAL_FEATURES,
    GOLD_FEATURE_STORE_COLUMNS,
    GOLD_LABEL_STORE_COLUMNS,
    NUMERIC_FEATURES,
)

from .conftest import make_silver


def test_gold_features_come_from_the_encounter_row(spark, id_mapping, params):
    silver, _, _ = make_silver(
        spark,
        id_mapping,
        params,
        {"encounter_id": "10", "admission_date": "2001-01-01", "number_emergency": "2"},
        {"encounter_id": "11", "admission_date": "2001-01-20", "diag_1": "786.2"},
        {"encounter_id": "12", "admission_date": "2001-03-01", "diag_1": "?", "race": "?"},
        {"encounter_id": "13", "patient_nbr": "88", "discharge_disposition_id": "13"},
    )
    gold = {r["encounter_id"]: r for r in build_gold_features(silver, params["features"]).collect()}
    assert set(gold) == {10, 11, 12}  # the hospice encounter is out of the model population
    first, second, third = gold[10], gold[11], gold[12]
    # history is the source's prior-year counts (0 outpatient + 2 emergency + 1 inpatient)
    assert first["prior_year_visits"] == 3 and second["prior_year_visits"] == 1
    assert first["diag_1_code"] == "428" and first["diag_2_code"] == "250"
    assert first["diag_3_code"] == "V45" and second["diag_1_code"] == "786"
    assert third["diag_1_code"] == "Missing"
    assert first["admission_source_code"] == "7" and first["discharge_disposition_code"] == "1"
    assert first["admission_type_code"] == "1"
    assert first["diag_1_group"] == "Circulatory" and first["diag_2_group"] == "Diabetes"
    assert first["diag_3_group"] == "Other" and second["diag_1_group"] == "Respiratory"
    assert third["diag_1_group"] == "Missing" and third["race"] == "Missing"
    assert first["age_years"] == 75 and first["admission_year"] == 2001
    assert first["n_meds_taken"] == 2 and first["n_meds_up"] == 1  # metformin Steady, insulin Up
    assert first["admission_source"] == "Emergency room" and first["discharge_group"] == "Home"
    assert first["med_change"] == "Yes" and first["a1c_result"] == ">8"
    assert tuple(build_gold_features(silver, params["features"]).columns) == (
        GOLD_FEATURE_STORE_COLUMNS
    )


def test_gold_labels(spark, id_mapping, params):
    silver, _, _ = make_silver(
        spark,
        id_mapping,
        params,
        {"encounter_id": "1", "readmitted": "<30"},
        {"encounter_id": "2", "readmitted": ">30"},
        {"encounter_id": "3", "readmitted": "NO"},
    )
    labels = build_gold_labels(silver)
    assert tuple(labels.columns) == GOLD_LABEL_STORE_COLUMNS
    rows = {r["encounter_id"]: (r["readmitted_30d"], r["readmitted_any"]) for r in labels.collect()}
    assert rows == {1: (1, 1), 2: (0, 1), 3: (0, 0)}


def test_the_shipped_groups_parse_unchanged(params):
    groups = FeatureGroups.parse(params["features"])
    assert groups.discharge_groups["Home with care"] == (6, 8)
    assert list(groups.admission_source_groups) == list(
        params["features"]["admission_source_groups"]
    )


def test_a_bad_group_is_named_before_silver_is_read(params):
    features = copy.deepcopy(params["features"])
    features["discharge_groups"]["Home"] = "1"
    features["discharge_groups"]["Left AMA"] = 7  # a bare id, not a list
    del features["admission_source_groups"]
    silver = None  # never touched: the groups are checked first
    with pytest.raises(ConfigError) as error:
        build_gold_features(silver, features)
    assert "features.discharge_groups.Home must be a list of ints, got '1'" in str(error.value)
    assert "features.discharge_groups.Left AMA must be a list of ints, got 7" in str(error.value)
    assert "features.admission_source_groups is missing" in str(error.value)


@pytest.mark.parametrize("features", [None, ["Home"]])
def test_features_that_are_not_a_mapping_are_named(features):
    with pytest.raises(ConfigError, match=re.escape("features is missing")):
        FeatureGroups.parse(features)


# What the feature store's columns are when pandas reads it (PandasPublishedTable).
STORE_DTYPES = {
    "encounter_id": "int64", "patient_nbr": "int64", "admission_date": "datetime64[ms]",
    "admission_year": "int32", **dict.fromkeys(NUMERIC_FEATURES, "float64"),
    **dict.fromkeys((*CATEGORICAL_FEATURES, "data_source"), "str"),
}  # fmt: skip
CODES = ("250.43", "250", "250.6", "250.", "250.x", "428.31", "196.5", "V45", "V57.1", "E849",
         "785.1", "786.2", "787", "788.41", "042", "1e3", "1abc", "459.99", "?", "403.91")  # fmt: skip


def sorted_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in encounter order: Spark gives no order."""
    return frame.sort_values("encounter_id", ignore_index=True)


def assert_driver_gold_equals_spark_gold(silver, feature_rules) -> pd.DataFrame:
    """Gold through Spark and through the driver evaluator from the same silver rows: equal row
    for row, with the store's dtypes. Returns the driver's frame."""
    batch = build_gold_features(silver, feature_rules).toArrow().to_pandas(date_as_object=False)
    rows = silver.toArrow().to_pandas(date_as_object=False)
    driver = sorted_frame(gold_features_frame(rows, feature_rules))
    pd.testing.assert_frame_equal(driver, sorted_frame(batch))
    assert {c: str(t) for c, t in driver.dtypes.items()} == STORE_DTYPES
    assert tuple(driver.columns) == GOLD_FEATURE_STORE_COLUMNS
    return driver


def test_driver_gold_equals_spark_gold(spark, id_mapping, params):
    overrides = [
        {"encounter_id": str(100 + k), "diag_1": CODES[k % len(CODES)],
         "diag_2": CODES[(k * 7 + 3) % len(CODES)], "diag_3": CODES[(k * 3 + 5) % len(CODES)],
         "admission_type_id": ("1", "5", "6", "8", "2")[k % 5],
         "admission_source_id": ("1", "4", "7", "9", "17", "20", "2")[k % 7],
         "discharge_disposition_id": ("1", "3", "6", "7", "25", "11", "13", "2", "18")[k % 9],
         "race": ("?", "Caucasian", "AfricanAmerican")[k % 3],
         "age": ("[0-10)", "[90-100)", "[50-60)")[k % 3], "payer_code": ("?", "MC")[k % 2],
         "insulin": ("Down", "Up", "No", "Steady")[k % 4], "change": ("Ch", "No")[k % 2],
         "number_emergency": str(k % 4), "admission_date": f"200{k % 9}-0{1 + k % 9}-15"}
        for k in range(60)
    ]  # fmt: skip
    silver, _, _ = make_silver(spark, id_mapping, params, *overrides)
    driver = assert_driver_gold_equals_spark_gold(silver, params["features"])
    assert 0 < len(driver) < 60  # death and hospice discharges left the model population
    assert driver["diag_1_group"].nunique() >= 8 and driver["dm_complication"].nunique() >= 3
