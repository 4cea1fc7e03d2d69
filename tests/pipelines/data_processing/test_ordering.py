"""Ordering checks of silver's quality report, on tiny hand-made frames."""

from __future__ import annotations

import logging
import random
from datetime import date, timedelta

import pandas as pd
import pytest

from readmit_kedro.pipelines.data_processing.bronze import ingest_extracts
from readmit_kedro.pipelines.data_processing.ordering import (
    ordering_counts,
    ordering_report,
    period_count_change,
    period_counts,
)
from readmit_kedro.pipelines.data_processing.silver import build_silver

from .conftest import make_extract, make_rows, written

CONFIG = {
    "period": "half_year",
    "max_no_label_with_later_encounter_share": 0.3,
    "max_contradicted_history_share": 0.3,
    "min_rows": 2,
}
COLUMNS = "encounter_id long, patient_nbr long, admission_date date, time_in_hospital int, "
COLUMNS += "number_inpatient int, readmitted string"


def silver(spark, *rows):
    """Rows of (encounter_id, patient_nbr, admission date ISO, time_in_hospital, inpatient, label)."""
    return spark.createDataFrame(
        [(e, p, date.fromisoformat(d), t, n, r) for e, p, d, t, n, r in rows], COLUMNS
    )


def by_period(report: dict) -> dict:
    return {entry["period"]: entry for entry in report["ordering"]["periods"]}


def test_no_label_share_counts_no_encounters_whose_patient_comes_back_later(spark) -> None:
    frame = silver(
        spark,
        # 2007H1: patient 1 "NO" then back in 2007H2 (contradiction); patient 2 "NO" alone.
        (1, 1, "2007-02-01", 3, 0, "NO"),
        (2, 2, "2007-03-01", 3, 0, "NO"),
        (3, 1, "2007-08-01", 3, 1, ">30"),
        # 2007H2: two "NO" with nothing after; a ">30" with a later stay is no contradiction.
        (4, 3, "2007-09-01", 3, 0, "NO"),
        (5, 4, "2007-10-01", 3, 0, ">30"),
        (6, 4, "2007-11-01", 3, 1, "NO"),
        # Same admission date: the id breaks the tie, so encounter 7 has a later encounter (8).
        (7, 5, "2007-12-01", 2, 0, "NO"),
        (8, 5, "2007-12-01", 2, 1, "NO"),
    )
    periods = by_period(ordering_report(frame, CONFIG))
    assert periods["2007H1"]["no_label_rows"] == 2
    assert periods["2007H1"]["no_label_with_later_encounter"] == 1
    assert periods["2007H1"]["no_label_with_later_encounter_share"] == 0.5
    assert periods["2007H2"]["no_label_rows"] == 4
    assert periods["2007H2"]["no_label_with_later_encounter_share"] == 0.25


def test_contradicted_history_needs_a_previous_discharge_within_365_days(spark) -> None:
    frame = silver(
        spark,
        (1, 1, "2006-01-01", 10, 0, ">30"),  # discharged 2006-01-11
        (2, 1, "2007-01-11", 3, 0, "NO"),  # 365 days after that discharge, inpatient 0: contradicts
        (3, 2, "2006-01-01", 3, 0, ">30"),  # discharged 2006-01-04
        (4, 2, "2007-01-06", 3, 0, "NO"),  # 367 days: not recent, not counted
        (5, 3, "2007-03-01", 3, 0, "<30"),
        (6, 3, "2007-03-20", 3, 2, "NO"),  # recent and number_inpatient agrees
        (7, 4, "2007-04-01", 5, 0, "<30"),
        (8, 4, "2007-04-03", 3, 1, "NO"),  # admitted before the previous discharge: recent
    )
    counts = {row["period"]: row for row in ordering_counts(frame, "half_year")}
    assert counts["2006H1"]["recent_returning_rows"] == 0
    assert counts["2007H1"]["recent_returning_rows"] == 3
    assert counts["2007H1"]["contradicted_history"] == 1
    periods = by_period(ordering_report(frame, CONFIG))
    assert periods["2006H1"]["contradicted_history_share"] is None  # no denominator, no share
    assert periods["2007H1"]["contradicted_history_share"] == pytest.approx(0.3333, abs=1e-4)


def test_a_breach_warns_and_a_clean_or_small_period_does_not(spark) -> None:
    frame = silver(
        spark,
        # 2007H1 clean: two "NO" without later encounters.
        (1, 1, "2007-01-10", 3, 0, "NO"),
        (2, 2, "2007-01-20", 3, 0, "NO"),
        # 2008H1 broken: both "NO" encounters have a later one, in 2008H2.
        (3, 3, "2008-01-10", 3, 0, "NO"),
        (4, 4, "2008-01-20", 3, 0, "NO"),
        (5, 3, "2008-07-01", 3, 0, ">30"),
        (6, 4, "2008-07-02", 3, 0, ">30"),
        # 1999H1: broken too, but one "NO" row only (< min_rows 2): no warning.
        (7, 5, "1999-01-10", 3, 0, "NO"),
        (8, 5, "1999-01-20", 3, 0, ">30"),
    )
    report = ordering_report(frame, CONFIG)
    periods = by_period(report)
    assert periods["1999H1"]["no_label_with_later_encounter_share"] == 1.0
    assert report["ordering"]["thresholds"]["min_rows"] == 2
    # 2008H2's two ">30" stays are within 365 days of 2008H1 with number_inpatient 0: breach too.
    assert report["ordering_warnings"] == [
        "2008H1: no_label_with_later_encounter_share 100.0% > 30.0% (2 rows): "
        "encounter order looks wrong",
        "2008H2: contradicted_history_share 100.0% > 30.0% (2 rows): encounter order looks wrong",
    ]


def test_year_periods_and_unknown_periods(spark) -> None:
    frame = silver(spark, (1, 1, "2007-01-10", 3, 0, "NO"), (2, 1, "2007-09-10", 3, 1, "NO"))
    report = ordering_report(frame, {**CONFIG, "period": "year"})
    assert by_period(report)["2007"]["no_label_with_later_encounter_share"] == 0.5
    with pytest.raises(ValueError, match="half_year or year"):
        ordering_report(frame, {**CONFIG, "period": "month"})


def test_build_silver_reports_ordering_and_logs_warnings(
    spark, id_mapping, params, caplog: pytest.LogCaptureFixture
) -> None:
    """Through build_silver: after dedupe, death/hospice rows included, warning logged, no failure."""
    rows = [
        # 2007H2: "NO" encounters whose patients come back in 2008 (the shipped min_rows is 200).
        {"encounter_id": str(i), "patient_nbr": str(i), "readmitted": "NO",
         "admission_date": "2007-08-01"}
        for i in range(1, 201)
    ] + [
        {"encounter_id": str(1000 + i), "patient_nbr": str(i), "readmitted": "NO",
         "discharge_disposition_id": "11", "admission_date": "2008-02-01"}
        for i in range(1, 201)
    ]  # fmt: skip
    extract = make_extract("diabetic_data_2008-02", make_rows(*rows, rows[0]))  # one duplicate
    bronze, _ = ingest_extracts(
        {extract.source_file: lambda: extract},
        {extract.source_file: extract.sha256},
        {},
        {"data_source": "synthetic"},
        "2008-02-29",
    )
    frame = spark.createDataFrame(pd.concat(written(bronze).values(), ignore_index=True))
    with caplog.at_level(logging.WARNING):
        _, _, report = build_silver(frame, id_mapping, "2008-02-29", params["data_quality"])
    assert report["duplicates_removed"] == 1
    periods = by_period(report)
    assert periods["2007H2"]["no_label_rows"] == 200
    assert periods["2007H2"]["no_label_with_later_encounter_share"] == 1.0
    assert periods["2008H1"]["no_label_with_later_encounter_share"] == 0.0
    assert [w.split(":")[0] for w in report["ordering_warnings"]] == ["2007H2"]
    assert "Silver ordering check: 2007H2" in caplog.text


NARROW = COLUMNS + ", excluded_from_model boolean"


def _random_rows(rng: random.Random, n: int) -> list[dict]:
    """Narrow silver rows: few patients, tied dates, stays that overlap, and nulls."""
    start = date(2006, 11, 1)

    def maybe(value):
        return None if rng.random() < 0.05 else value

    return [
        {
            "encounter_id": encounter_id,
            "patient_nbr": maybe(rng.randint(1, 25)),
            "admission_date": start + timedelta(days=rng.choice([0, 0, 30, 200, 380, 400, 700])),
            "time_in_hospital": maybe(rng.randint(1, 14)),
            "number_inpatient": maybe(rng.choice([0, 0, 1, 3])),
            "readmitted": maybe(rng.choice(["NO", "NO", ">30", "<30"])),
            "excluded_from_model": maybe(rng.random() < 0.2),
        }
        for encounter_id in rng.sample(range(1, 10_000), n)
    ]


@pytest.mark.parametrize("period", ["half_year", "year"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_driver_count_change_equals_spark_counts(spark, period, seed) -> None:
    """An incremental run counts its patients' rows with pandas; a full rebuild with Spark."""
    rng = random.Random(seed)
    before, after = _random_rows(rng, 150), _random_rows(rng, 200)
    expected = {}
    for sign, rows in ((-1, before), (1, after)):
        frame = spark.createDataFrame([tuple(r.values()) for r in rows], NARROW)
        for key, values in period_counts(frame, period).items():
            entry = expected.setdefault(key, dict.fromkeys(values, 0))
            for name, value in values.items():
                entry[name] += sign * value
    assert period_count_change(before, after, period) == expected
    assert period_count_change([], [], period) == {}
