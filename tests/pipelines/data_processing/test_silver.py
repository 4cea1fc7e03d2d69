"""Silver: quarantine rules, dedupe, run_date scope, and the checks of ``data_quality``."""

from __future__ import annotations

import copy
import re

import pandas as pd
import pytest

from readmit_kedro.pipelines.data_processing.silver import QualityRules, build_silver
from readmit_kedro.run_context import ConfigError

from .conftest import ingest, make_landing, make_rows, make_silver

SOURCE = {"data_source": "synthetic"}


def test_silver_quarantines_each_rule_and_counts_add_up(spark, id_mapping, params):
    silver, quarantine, report = make_silver(
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
