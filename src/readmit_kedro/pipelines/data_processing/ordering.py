"""Ordering checks for silver: does (admission_date, encounter_id) still follow time?

The source has no dates. ``admission_date`` is a stand-in spread over encounter_id rank
(``readmit_kedro.landing.monthly``), which assumes id order is time order. Labels and the source's own
history counts can contradict that order, so silver's quality report measures, per admission
period, two symptoms of a broken order:

* a ``readmitted == "NO"`` encounter whose patient has a later encounter: every later encounter
  is itself an inpatient stay, so "NO" (no readmission at all) contradicts the order;
* a returning encounter whose previous stay ended within 365 days before it, yet the source says
  ``number_inpatient == 0`` (no inpatient visit in the preceding year).

Each check is a share with its denominator; a period above a threshold (with enough rows) is a
warning, never a failure: the order is an assumption of the stand-in dates, not a row defect.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

ORDERING_COLUMNS = (
    "encounter_id", "patient_nbr", "admission_date", "time_in_hospital", "number_inpatient",
    "readmitted",
)  # fmt: skip
PERIODS = ("half_year", "year")  # what admission_period can group by
HISTORY_DAYS = 365  # number_inpatient counts inpatient visits "in the year preceding the encounter"
_CHECKS = (  # (check, numerator, denominator, threshold key)
    ("no_label_with_later_encounter_share", "no_label_with_later_encounter", "no_label_rows",
     "max_no_label_with_later_encounter_share"),
    ("contradicted_history_share", "contradicted_history", "recent_returning_rows",
     "max_contradicted_history_share"),
)  # fmt: skip


def admission_period(admission_date: Column, period: str) -> Column:
    """The reporting period of an admission: "2007H2" for half_year, "2007" for year."""
    year = F.year(admission_date).cast("string")
    if _checked(period) == "year":
        return year
    half = F.when(F.month(admission_date) <= 6, F.lit("H1")).otherwise(F.lit("H2"))
    return F.concat(year, half)


def _checked(period: str) -> str:
    if period not in PERIODS:
        raise ValueError(f"ordering_checks.period must be half_year or year, not {period!r}")
    return period


def with_neighbours(silver: DataFrame, *extra: str) -> DataFrame:
    """Narrow rows with the patient's next and previous encounter in (admission_date, id) order.

    One window over the six columns the checks need; all silver rows count (death/hospice
    exclusions included): any later encounter of the patient contradicts a "NO".
    """
    by_patient = Window.partitionBy("patient_nbr").orderBy("admission_date", "encounter_id")
    return silver.select(*ORDERING_COLUMNS, *extra).select(
        *ORDERING_COLUMNS,
        *extra,
        F.lead("encounter_id").over(by_patient).isNotNull().alias("has_later_encounter"),
        F.lag("admission_date").over(by_patient).alias("previous_admission_date"),
        F.lag("time_in_hospital").over(by_patient).alias("previous_time_in_hospital"),
    )


def recent_previous_stay(neighbours: DataFrame) -> Column:
    """The previous stay was discharged (admission + time_in_hospital days) within 365 days before.

    A discharge after this admission (overlapping stand-in dates) counts as recent too.
    """
    discharge = F.date_add(F.col("previous_admission_date"), F.col("previous_time_in_hospital"))
    return F.coalesce(F.datediff(F.col("admission_date"), discharge) <= HISTORY_DAYS, F.lit(False))


COUNTED = ("no_label_rows", "no_label_with_later_encounter", "recent_returning_rows",
           "contradicted_history", "rows", "excluded")  # fmt: skip


def period_counts(silver: DataFrame, period: str) -> dict[str, dict[str, int]]:
    """Per period: numerators and denominators of both checks, the rows and the death/hospice
    exclusions, as one small collected result.

    Every count is a sum over patients (the window never crosses patients), so counts of a table
    can be updated by subtracting the counts of some patients' old rows and adding their new ones
    (:func:`period_count_change`).
    """
    if "excluded_from_model" not in silver.columns:
        silver = silver.withColumn("excluded_from_model", F.lit(False))
    neighbours = with_neighbours(silver, "excluded_from_model")
    is_no = F.coalesce(F.col("readmitted") == "NO", F.lit(False))
    recent = recent_previous_stay(neighbours)

    def total(condition: Column) -> Column:
        return F.sum(F.when(condition, F.lit(1)).otherwise(F.lit(0)))

    rows = (
        neighbours.groupBy(admission_period(F.col("admission_date"), period).alias("period"))
        .agg(
            total(is_no).alias("no_label_rows"),
            total(is_no & F.col("has_later_encounter")).alias("no_label_with_later_encounter"),
            total(recent).alias("recent_returning_rows"),
            total(recent & (F.col("number_inpatient") == 0)).alias("contradicted_history"),
            F.count(F.lit(1)).alias("rows"),
            total(F.col("excluded_from_model")).alias("excluded"),
        )
        .collect()
    )
    return {
        row["period"]: {key: int(row[key] or 0) for key in COUNTED}
        for row in rows
        if row["period"] is not None
    }


def period_count_change(
    before: list[dict[str, Any]], after: list[dict[str, Any]], period: str
) -> dict[str, dict[str, int]]:
    """``period_counts(after)`` minus ``period_counts(before)`` for some patients' rows held on
    the driver (an incremental run's affected patients, a few rows each), computed with pandas:
    as Spark queries these counts cost ~1 s of planning and tasks (real data, 2 cores) whatever
    the rows. Same definitions as :func:`period_counts` (``tests/.../test_ordering.py`` checks
    both agree on random rows)."""
    change: dict[str, dict[str, int]] = {}
    for sign, rows in ((-1, before), (1, after)):
        for key, values in _driver_counts(pd.DataFrame(rows, columns=_NARROW), period).items():
            entry = change.setdefault(key, dict.fromkeys(COUNTED, 0))
            for name in COUNTED:
                entry[name] += sign * values[name]
    return change


_NARROW = (*ORDERING_COLUMNS, "excluded_from_model")


def _driver_counts(rows: pd.DataFrame, period: str) -> dict[str, dict[str, int]]:
    rows = rows.assign(admission_date=pd.to_datetime(rows["admission_date"]))
    rows = rows.sort_values(["patient_nbr", "admission_date", "encounter_id"], na_position="first")
    by_patient = rows.groupby("patient_nbr", sort=False, dropna=False)
    stay = pd.to_timedelta(by_patient["time_in_hospital"].shift(), unit="D")
    discharge = by_patient["admission_date"].shift() + stay
    recent = ((rows["admission_date"] - discharge).dt.days <= HISTORY_DAYS).fillna(False)
    is_no = rows["readmitted"].eq("NO").fillna(False)
    flags = pd.DataFrame(
        {
            "no_label_rows": is_no,
            "no_label_with_later_encounter": is_no & (by_patient.cumcount(ascending=False) > 0),
            "recent_returning_rows": recent,
            "contradicted_history": recent & rows["number_inpatient"].eq(0).fillna(False),
            "rows": True,
            "excluded": rows["excluded_from_model"].fillna(False).astype(bool),
        },
        index=rows.index,
    )
    dates = rows["admission_date"].dt
    key = dates.year.astype("Int64").astype("string")
    if _checked(period) == "half_year":
        key = key + (dates.month <= 6).map({True: "H1", False: "H2"}).astype("string")
    sums = flags.astype(int).groupby(key, dropna=True).sum()
    return {str(p): {name: int(v) for name, v in row.items()} for p, row in sums.iterrows()}


def add_counts(
    base: dict[str, dict[str, int]], change: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """``base`` plus ``change`` (signed), period by period; periods left without rows go."""
    result = {period: dict(values) for period, values in base.items()}
    for period, values in change.items():
        entry = result.setdefault(period, dict.fromkeys(COUNTED, 0))
        for key in COUNTED:
            entry[key] += values[key]
    return {p: v for p, v in sorted(result.items()) if v["rows"]}


def ordering_counts(silver: DataFrame, period: str) -> list[dict[str, Any]]:
    """Per period: denominators and numerators of both checks (what the report section shows)."""
    return counts_for_report(period_counts(silver, period))


def counts_for_report(counts: dict[str, dict[str, int]]) -> list[dict[str, Any]]:
    return [
        {"period": period, **{k: v for k, v in values.items() if k not in ("rows", "excluded")}}
        for period, values in sorted(counts.items())
    ]


def ordering_section(counts: list[dict[str, Any]], config: dict[str, Any]) -> dict[str, Any]:
    """The report section: counts and shares per period, thresholds, and the warnings they raise."""
    periods = []
    for row in counts:
        entry = {key: int(value or 0) if key != "period" else value for key, value in row.items()}
        for check, numerator, denominator, _ in _CHECKS:
            rows = entry[denominator]
            entry[check] = round(entry[numerator] / rows, 4) if rows else None
        periods.append(entry)
    thresholds = {key: config[key] for *_, key in _CHECKS}
    return {
        "ordering": {
            "period": config["period"],
            "thresholds": {**thresholds, "min_rows": config["min_rows"]},
            "periods": periods,
        },
        "ordering_warnings": ordering_warnings(periods, config),
    }


def ordering_warnings(periods: list[dict[str, Any]], config: dict[str, Any]) -> list[str]:
    """One human line per period and check above its threshold, if the period has min_rows."""
    warnings = []
    for entry in periods:
        for check, _, denominator, key in _CHECKS:
            share, rows, limit = entry[check], entry[denominator], config[key]
            if share is not None and rows >= config["min_rows"] and share > limit:
                warnings.append(
                    f"{entry['period']}: {check} {share:.1%} > {limit:.1%} "
                    f"({entry[denominator]} rows): encounter order looks wrong"
                )
    return warnings


def ordering_report(silver: DataFrame, config: dict[str, Any]) -> dict[str, Any]:
    """Both ordering checks of silver per period, ready to merge into the quality report."""
    return ordering_section(ordering_counts(silver, config["period"]), config)
