"""Gold: the feature and label stores built from silver, and the checks of ``features``."""

from __future__ import annotations

import copy
import re

import pytest

from readmit_kedro.pipelines.data_processing.gold import (
    FeatureGroups,
    build_gold_features,
    build_gold_labels,
)
from readmit_kedro.run_context import ConfigError
from readmit_kedro.schema import GOLD_FEATURE_STORE_COLUMNS, GOLD_LABEL_STORE_COLUMNS

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
