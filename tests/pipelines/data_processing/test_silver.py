"""Silver: quarantine rules, dedupe, run_date scope, and the checks of ``data_quality``."""

from __future__ import annotations

import copy
import re

import pandas as pd
import pytest

from readmit_kedro.pipelines.data_processing.silver import (
    DriverRules,
    QualityRules,
    build_silver,
)
from readmit_kedro.run_context import ConfigError
from readmit_kedro.schema import LANDING_COLUMNS

from .conftest import ingest, make_landing, make_rows, make_silver

SOURCE = {"data_source": "synthetic"}
BROKEN_RULES = (  # encounters 2-7, each breaking one quality rule
    {"encounter_id": "2", "num_lab_procedures": "4x1"},
    {"encounter_id": "3", "time_in_hospital": "40"},
    {"encounter_id": "4", "admission_type_id": "99"},
    {"encounter_id": "?"},
    {"encounter_id": "6", "metformin": "Sometimes"},
    {"encounter_id": "7", "readmitted": "maybe"},
)


def test_silver_quarantines_each_rule_and_counts_add_up(spark, id_mapping, params):
    silver, quarantine, report = make_silver(
        spark,
        id_mapping,
        params,
        {"encounter_id": "1"},
        *BROKEN_RULES,
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


def assert_driver_silver_equals_spark_silver(bronze, id_mapping, data_quality) -> pd.DataFrame:
    """Silver's row rules through Spark (``build_silver``) and through the driver evaluator from
    the same bronze rows: the same quarantine verdicts and the same silver rows, value for value.
    The bronze rows must hold no duplicate encounter (silver keeps one copy). Returns the driver's
    valid rows."""
    silver, quarantine, _ = build_silver(bronze, id_mapping, "2008-12-31", data_quality)
    rows = bronze.toArrow().to_pandas()
    inputs = {c: rows[c].astype(object).where(rows[c].notna(), None) for c in LANDING_COLUMNS}
    driver = DriverRules(id_mapping, data_quality).silver_rows(
        {**inputs, "_parse_error": rows["_parse_error"]}
    )
    verdicts = pd.Series(driver.pop("_dq_rule"), index=rows["_row_number"]).dropna()
    batch_verdicts = quarantine.select("_row_number", "_dq_rule").toPandas()
    assert verdicts.sort_index().to_dict() == dict(
        sorted(zip(batch_verdicts["_row_number"], batch_verdicts["_dq_rule"], strict=True))
    )
    valid = ~rows["_row_number"].isin(verdicts.index).to_numpy()
    ours = pd.DataFrame({c: pd.Series(v)[valid].tolist() for c, v in driver.items()})
    batch = silver.select(*driver).toPandas()
    assert list(batch.columns) == [c for c in silver.columns if not c.startswith("_")]
    pd.testing.assert_frame_equal(_comparable(ours), _comparable(batch))
    return ours


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Values as Python objects (None for every kind of null), rows by encounter."""
    plain = frame.astype(object).where(frame.notna(), None)
    for column in plain:
        plain[column] = [v.item() if hasattr(v, "item") else v for v in plain[column]]
    plain["admission_date"] = [
        None if v is None else pd.Timestamp(v).date() for v in plain["admission_date"]
    ]
    return plain.sort_values("encounter_id").reset_index(drop=True)


def test_driver_silver_equals_spark_silver(spark, id_mapping, params):
    """One implementation of silver's row rules: every rule broken once, and edge values that
    pass (spaces around numbers, a signed zero, a leap day), give the batch verdicts and rows."""
    overrides = [
        {"encounter_id": "1", "weight": " ? ", "payer_code": " MC "},
        *BROKEN_RULES,
        {"encounter_id": "8", "discharge_disposition_id": "11"},
        {"encounter_id": "9", "admission_date": "2008-02-30"},
        {"encounter_id": "10", "admission_date": "2008-02-29", "num_procedures": " 2 "},
        {"encounter_id": "11", "num_medications": "-0", "admission_source_id": "007"},
        {"encounter_id": "12", "patient_nbr": "1.5"},
        {"encounter_id": "13", "number_diagnoses": "99999999999"},
        {"encounter_id": "14", "discharge_disposition_id": "", "race": ""},
        {"encounter_id": "15", "admission_type_id": "6", "age": "[90-100)"},
    ]
    landing = make_landing(**{"diabetic_data_1999-01": make_rows(*overrides)})
    bronze, _ = ingest(landing, "2008-12-31", source=SOURCE)
    frame = spark.createDataFrame(pd.concat(bronze.values(), ignore_index=True))
    ours = assert_driver_silver_equals_spark_silver(frame, id_mapping, params["data_quality"])
    assert sorted(ours["encounter_id"]) == [1, 8, 10, 11, 15]  # 13: too many diagnoses


def test_silver_honours_run_date(spark, id_mapping, params):
    bronze_jan, _ = ingest(
        make_landing(**{"diabetic_data_1999-01": make_rows({"encounter_id": "1"})}),
        "1999-02-28",
        source=SOURCE,
    )
    bronze_feb, _ = ingest(
        make_landing(**{"diabetic_data_1999-02": make_rows({"encounter_id": "2"})}),
        "1999-02-28",
        source=SOURCE,
    )
    frame = spark.createDataFrame(pd.concat([*bronze_jan.values(), *bronze_feb.values()]))
    silver, _, _ = build_silver(frame, id_mapping, "1999-01-31", params["data_quality"])
    assert [r["encounter_id"] for r in silver.collect()] == [1]


def test_the_shipped_rules_parse_unchanged(params):
    shipped = params["data_quality"]
    rules = QualityRules.parse(shipped)
    assert list(rules.ranges) == list(shipped["ranges"])  # rule order decides the first broken
    assert rules.ranges["time_in_hospital"] == (1, 14)
    assert rules.allowed_values["change"] == ("No", "Ch")
    assert rules.ordering_checks == shipped["ordering_checks"]
    assert rules.death_or_hospice_discharge_ids == tuple(shipped["death_or_hospice_discharge_ids"])


def _with(params, path: str, value):
    """The shipped ``data_quality`` with the value under dotted ``path`` replaced (or removed)."""
    config = copy.deepcopy(params["data_quality"])
    *parents, key = path.split(".")
    target = config
    for parent in parents:
        target = target[parent]
    if value is None:
        del target[key]
    else:
        target[key] = value
    return config


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "ordering_checks.min_rows",
            -1,
            "data_quality.ordering_checks.min_rows must be an int >= 1, got -1",
        ),
        (
            "ordering_checks.period",
            "month",
            "data_quality.ordering_checks.period must be one of half_year, year, got 'month'",
        ),
        (
            "ordering_checks.max_contradicted_history_share",
            5,
            "data_quality.ordering_checks.max_contradicted_history_share must be a number in "
            "[0, 1], got 5",
        ),
        ("ordering_checks", None, "data_quality.ordering_checks is missing"),
        (
            "ranges.time_in_hospital",
            [14, 1],
            "data_quality.ranges.time_in_hospital must be [low, high], two numbers with "
            "low <= high, got [14, 1]",
        ),
        (
            "ranges.time_in_hospitl",
            [1, 14],
            "data_quality.ranges.time_in_hospitl is not a column silver parses as an integer",
        ),
        (
            "allowed_values.change",
            [False, "Ch"],  # what an unquoted YAML No becomes
            "data_quality.allowed_values.change must be a non-empty list of strings, "
            "got [False, 'Ch']",
        ),
        ("allowed_values.A1Cresult", ["Norm"], "data_quality.allowed_values.A1Cresult is not"),
        (
            "death_or_hospice_discharge_ids",
            [11, "13"],
            "data_quality.death_or_hospice_discharge_ids must be a list of ints, got [11, '13']",
        ),
    ],
)
def test_a_bad_rule_is_named_before_any_row_is_read(id_mapping, params, path, value, message):
    bronze = None  # never touched: the rules are checked first
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_silver(bronze, id_mapping, "2008-12-31", _with(params, path, value))


def test_every_bad_rule_is_named_at_once(id_mapping, params):
    config = _with(params, "ordering_checks.min_rows", 0)
    config["ranges"]["num_procedures"] = "0-10"
    with pytest.raises(ConfigError) as error:
        build_silver(None, id_mapping, "2008-12-31", config)
    assert "data_quality.ordering_checks.min_rows must be an int >= 1, got 0" in str(error.value)
    assert "data_quality.ranges.num_procedures must be [low, high]" in str(error.value)


def test_a_bad_run_date_is_named(id_mapping, params):
    with pytest.raises(ConfigError, match=r"run_date '2008-02-30' is not an ISO date"):
        build_silver(None, id_mapping, "2008-02-30", params["data_quality"])
