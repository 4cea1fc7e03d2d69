"""Unit tests of the medallion nodes on a handful of hand-written rows."""

from __future__ import annotations

import pandas as pd
import pytest

from readmit_kedro.pipelines.data_processing.nodes import (
    build_gold_features,
    build_gold_labels,
    build_silver,
    decide_training_trigger,
    ingest_extracts,
)
from readmit_kedro.schema import GOLD_FEATURE_STORE_COLUMNS, GOLD_LABEL_STORE_COLUMNS

from .conftest import make_extract, make_rows

SOURCE = {"data_source": "synthetic"}


def _landing(**extracts: pd.DataFrame) -> dict:
    loaded = {name: make_extract(name, frame) for name, frame in extracts.items()}
    return {name: (lambda e=extract: e) for name, extract in loaded.items()}


def _silver(spark, id_mapping, params, *overrides, run_date="2008-12-31"):
    bronze, _ = ingest_extracts(
        _landing(**{"diabetic_data_1999-01": make_rows(*overrides)}), [], SOURCE, run_date
    )
    frame = pd.concat(bronze.values(), ignore_index=True)
    return build_silver(spark.createDataFrame(frame), id_mapping, run_date, params["data_quality"])


def test_ingest_only_new_extracts_up_to_run_date():
    landing = _landing(
        **{
            "diabetic_data_1999-01": make_rows({}),
            "diabetic_data_1999-02": make_rows({"encounter_id": "2"}, {"encounter_id": "3"}),
            "diabetic_data_1999-03": make_rows({"encounter_id": "4"}),
        }
    )
    bronze, summary = ingest_extracts(landing, ["diabetic_data_1999-01"], SOURCE, "1999-02-28")
    assert list(bronze) == ["diabetic_data_1999-02"]
    assert summary["new_rows"] == 2 and summary["extracts_in_scope"] == 2
    frame = bronze["diabetic_data_1999-02"]
    assert frame["_source_file"].unique().tolist() == ["diabetic_data_1999-02"]
    assert frame["_extract_month"].unique().tolist() == ["1999-02"]
    assert len(frame["_source_sha256"].iloc[0]) == 64
    assert frame["_data_source"].unique().tolist() == ["synthetic"]


def test_reingesting_is_a_noop():
    landing = _landing(**{"diabetic_data_1999-01": make_rows({})})
    bronze, summary = ingest_extracts(landing, ["diabetic_data_1999-01"], SOURCE, "1999-01-31")
    assert bronze == {} and summary["new_rows"] == 0


def test_missing_column_names_the_file_and_column():
    broken = make_rows({}).rename(columns={"num_medications": "n_medications"})
    with pytest.raises(ValueError, match=r"diabetic_data_1999-01.*\['num_medications'\] missing"):
        ingest_extracts(_landing(**{"diabetic_data_1999-01": broken}), [], SOURCE, "1999-01-31")


def test_header_only_extract_is_refused():
    empty = make_rows({}).iloc[0:0]
    with pytest.raises(ValueError, match="diabetic_data_1999-01: header only"):
        ingest_extracts(_landing(**{"diabetic_data_1999-01": empty}), [], SOURCE, "1999-01-31")


def test_nothing_landed_is_a_clear_error():
    with pytest.raises(ValueError, match="No landing extract up to 1998-12"):
        ingest_extracts(
            _landing(**{"diabetic_data_1999-01": make_rows({})}), [], SOURCE, "1998-12-31"
        )


def test_silver_quarantines_each_rule_and_counts_add_up(spark, id_mapping, params):
    silver, quarantine, report = _silver(
        spark,
        id_mapping,
        params,
        {"encounter_id": "1"},
        {"encounter_id": "2", "num_lab_procedures": "4x1"},
        {"encounter_id": "3", "time_in_hospital": "40"},
        {"encounter_id": "4", "admission_type_id": "99"},
        {"encounter_id": "?"},
        {"encounter_id": "6", "metformin": "Sometimes"},
        {"encounter_id": "7", "readmitted": "maybe"},
        {"encounter_id": "1", "num_medications": "12"},  # a second copy of encounter 1
        {"encounter_id": "8", "discharge_disposition_id": "11"},  # expired
    )
    rules = {r["encounter_id"]: r["_dq_rule"] for r in quarantine.collect()}
    assert rules == {
        "2": "unparseable_number",
        "3": "impossible_time_in_hospital",
        "4": "unknown_admission_type_id",
        None: "missing_key",
        "6": "unknown_drug_value",
        "7": "unknown_readmitted",
    }
    assert report["quarantined_rows"] == 6
    assert report["duplicates_removed"] == 1
    assert report["silver_rows"] == 2 and report["excluded_death_or_hospice"] == 1
    assert report["bronze_rows"] == 9
    kept = {r["encounter_id"]: r for r in silver.collect()}
    assert kept[1]["num_medications"] == 12  # the later copy of a duplicate wins
    assert kept[8]["excluded_from_model"] and not kept[1]["excluded_from_model"]
    assert kept[1]["medical_specialty"] is None and kept[1]["weight"] is None  # "?" → null
    assert kept[1]["admission_type"] == "Emergency"  # described with IDs_mapping.csv
    assert "a1_cresult" in silver.columns and "glyburide_metformin" in silver.columns


def test_silver_honours_run_date(spark, id_mapping, params):
    bronze_jan, _ = ingest_extracts(
        _landing(**{"diabetic_data_1999-01": make_rows({"encounter_id": "1"})}),
        [],
        SOURCE,
        "1999-02-28",
    )
    bronze_feb, _ = ingest_extracts(
        _landing(**{"diabetic_data_1999-02": make_rows({"encounter_id": "2"})}),
        [],
        SOURCE,
        "1999-02-28",
    )
    frame = spark.createDataFrame(pd.concat([*bronze_jan.values(), *bronze_feb.values()]))
    silver, _, _ = build_silver(frame, id_mapping, "1999-01-31", params["data_quality"])
    assert [r["encounter_id"] for r in silver.collect()] == [1]


def test_gold_features_come_from_the_encounter_row(spark, id_mapping, params):
    silver, _, _ = _silver(
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
    silver, _, _ = _silver(
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


@pytest.mark.parametrize(("new_rows", "expected"), [(4999, False), (5000, True)])
def test_training_trigger(new_rows, expected):
    signal = decide_training_trigger(
        {"run_date": "2008-01-31", "new_extracts": ["x"], "new_rows": new_rows},
        {"model_population": 10},
        {"min_new_rows": 5000},
    )
    assert signal["train_recommended"] is expected and str(new_rows) in signal["reason"]
