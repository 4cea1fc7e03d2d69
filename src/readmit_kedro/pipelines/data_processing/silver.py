"""Silver: the bronze rows landed up to ``run_date``, cleaned, validated and deduplicated.

Recomputed from bronze on every run, so re-running a date (an Airflow retry or backfill) gives the
same table and never duplicates rows. ``data_quality`` is checked before any row is touched: a
mistyped rule would otherwise quarantine good rows, or pass bad ones, without an error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from readmit_kedro.pipelines.data_processing.ordering import PERIODS, ordering_report
from readmit_kedro.run_context import Problems, RunDate, is_int, is_number
from readmit_kedro.schema import DRUG_COLUMNS, DRUG_VALUES, LANDING_COLUMNS

logger = logging.getLogger(__name__)

INTEGER_COLUMNS = (
    "encounter_id", "patient_nbr", "admission_type_id", "discharge_disposition_id",
    "admission_source_id", "time_in_hospital", "num_lab_procedures", "num_procedures",
    "num_medications", "number_outpatient", "number_emergency", "number_inpatient",
    "number_diagnoses",
)  # fmt: skip
ID_COLUMNS = ("admission_type_id", "discharge_disposition_id", "admission_source_id")


def snake_case(name: str) -> str:
    """Silver's name of a landing column (``A1Cresult`` -> ``a1_cresult``)."""
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).replace("-", "_")
    return name.lower()


SILVER_COLUMNS = tuple(snake_case(c) for c in LANDING_COLUMNS)
_ORDERING_CHECKS = (  # (key, check, requirement) of data_quality.ordering_checks
    ("period", lambda v: v in PERIODS, f"must be one of {', '.join(PERIODS)}"),
    ("max_no_label_with_later_encounter_share", is_number(0, 1), "must be a number in [0, 1]"),
    ("max_contradicted_history_share", is_number(0, 1), "must be a number in [0, 1]"),
    ("min_rows", is_int(1), "must be an int >= 1"),
)


def is_int_list(value: Any) -> bool:
    """A check for ``Problems.check``: a list of ints (ids), possibly empty."""
    return isinstance(value, list) and all(is_int()(v) for v in value)


def _is_bounds(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and all(map(is_number(), value))
        and value[0] <= value[1]
    )


def _is_text_list(value: Any) -> bool:
    # An unquoted YAML No/Yes is a bool, not the label "No": refuse it rather than never match.
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)


@dataclass(frozen=True)
class QualityRules:
    """``params:data_quality``, validated (meanings in conf/base/parameters_data_processing.yml)."""

    death_or_hospice_discharge_ids: tuple[int, ...]
    ordering_checks: dict[str, Any]
    ranges: dict[str, tuple[float, float]]
    allowed_values: dict[str, tuple[str, ...]]

    @classmethod
    def parse(cls, config: Any) -> QualityRules:
        """``params:data_quality`` as :class:`QualityRules`; ConfigError naming every bad key."""
        problems = Problems("data_quality", config)
        problems.raise_if_any()  # not a mapping: nothing below could be checked
        excluded = problems.check(
            "death_or_hospice_discharge_ids", is_int_list, "must be a list of ints"
        )
        ordering = _ordering_checks(problems)
        ranges = _per_column(
            problems,
            "ranges",
            columns=INTEGER_COLUMNS,
            what="a column silver parses as an integer",
            valid=_is_bounds,
            requirement="must be [low, high], two numbers with low <= high",
        )
        allowed = _per_column(
            problems,
            "allowed_values",
            columns=SILVER_COLUMNS,
            what="a silver column",
            valid=_is_text_list,
            requirement="must be a non-empty list of strings",
        )
        problems.raise_if_any()
        return cls(
            death_or_hospice_discharge_ids=tuple(excluded),
            ordering_checks=ordering,
            ranges={column: tuple(bounds) for column, bounds in ranges.items()},
            allowed_values={column: tuple(values) for column, values in allowed.items()},
        )


def _ordering_checks(parent: Problems) -> dict[str, Any]:
    """``data_quality.ordering_checks``, checked into ``parent``: the dict ordering.py reads."""
    section = Problems(f"{parent.section}.ordering_checks", parent.config.get("ordering_checks"))
    checks = {key: section.check(key, valid, why) for key, valid, why in _ORDERING_CHECKS}
    parent.messages += section.messages
    return checks


def _per_column(
    parent: Problems,
    key: str,
    *,
    columns: tuple[str, ...],
    what: str,
    valid: Callable[[Any], bool],
    requirement: str,
) -> dict[str, Any]:
    """A block of per-column rules (``ranges``, ``allowed_values``), checked into ``parent``."""
    section = Problems(f"{parent.section}.{key}", parent.config.get(key))
    for column in section.config:
        if column in columns:
            section.check(column, valid, requirement)
        else:
            section.add(f"{column} is not {what}")
    parent.messages += section.messages
    return section.config


def build_silver(
    bronze: DataFrame, id_mapping: pd.DataFrame, run_date: str, data_quality: dict[str, Any]
) -> tuple[DataFrame, DataFrame, dict[str, Any]]:
    """Clean the bronze rows in scope: nulls, types, names, validation, dedupe, ID descriptions.

    Returns the silver table, the quarantine (failing rows with the first rule they broke) and a
    quality report whose counts add up: bronze = silver + quarantined + duplicates removed.
    """
    rules = QualityRules.parse(data_quality)
    run = RunDate.parse(run_date)
    scoped = bronze.where(F.col("_extract_month") <= run.month)
    renamed = scoped.select(
        *[_null_if_missing(c).alias(snake_case(c)) for c in LANDING_COLUMNS],
        *[c for c in scoped.columns if c.startswith("_")],
    )
    broken = _first_broken_rule(renamed, id_mapping, rules.ranges, rules.allowed_values)
    checked = renamed.withColumn("_dq_rule", broken).cache()
    quarantine = checked.where(F.col("_dq_rule").isNotNull())
    valid = checked.where(F.col("_dq_rule").isNull()).drop("_dq_rule")
    excluded_ids = rules.death_or_hospice_discharge_ids
    copies = _copies_per_encounter(valid).cache()
    silver = _describe_ids(_cast_types(_latest_copy_only(valid, copies)), id_mapping)
    silver = silver.withColumn(
        "excluded_from_model", _death_or_hospice(F.col("discharge_disposition_id"), excluded_ids)
    )
    report = _quality_report(checked, copies, excluded_ids, run.iso)
    report.update(ordering_report(silver, rules.ordering_checks))
    logger.info("Silver quality report: %s", report)
    for warning in report["ordering_warnings"]:
        logger.warning("Silver ordering check: %s", warning)
    return silver, quarantine, report


def _death_or_hospice(discharge_disposition_id: Column, excluded_ids: tuple[int, ...]) -> Column:
    """Encounters nobody can be readmitted from: flagged in silver, counted in the report."""
    return discharge_disposition_id.cast("int").isin(*excluded_ids)


def _copies_per_encounter(valid: DataFrame) -> DataFrame:
    """Per encounter: how many valid copies landed, and which is the latest (the one silver keeps).

    Narrow on purpose: deduplicating through this small table avoids sorting the wide rows.
    """
    latest = F.max(
        F.struct("_extract_month", "_source_file", "_row_number", "discharge_disposition_id")
    )
    return valid.groupBy("encounter_id").agg(
        F.count(F.lit(1)).alias("_copies"), latest.alias("_latest")
    )


def _latest_copy_only(valid: DataFrame, copies: DataFrame) -> DataFrame:
    """Drop every copy of a duplicated encounter but the latest (last extract, last row)."""
    duplicated = copies.where(F.col("_copies") > 1).select(
        "encounter_id",
        F.col("_latest._source_file").alias("_keep_file"),
        F.col("_latest._row_number").alias("_keep_row"),
    )
    flagged = valid.join(F.broadcast(duplicated), on="encounter_id", how="left")
    keep = F.col("_keep_file").isNull() | (
        (F.col("_source_file") == F.col("_keep_file"))
        & (F.col("_row_number") == F.col("_keep_row"))
    )
    return flagged.where(keep).drop("_keep_file", "_keep_row")


def _null_if_missing(column: str) -> Column:
    return F.nullif(F.nullif(F.trim(F.col(f"`{column}`")), F.lit("?")), F.lit(""))


def _first_broken_rule(
    df: DataFrame,
    id_mapping: pd.DataFrame,
    ranges: dict[str, tuple[float, float]],
    allowed_values: dict[str, tuple[str, ...]],
) -> Column:
    """The first data-quality rule a row breaks (NULL when it breaks none), in a stable order."""
    integer = r"^-?[0-9]+$"
    known_ids = {
        col: [int(i) for i in id_mapping.loc[id_mapping["id_column"] == col, "id"]]
        for col in ID_COLUMNS
    }
    checks: list[tuple[str, Column]] = [
        (
            "missing_key",
            F.col("encounter_id").isNull()
            | F.col("patient_nbr").isNull()
            | ~F.col("encounter_id").rlike(integer)
            | ~F.col("patient_nbr").rlike(integer),
        ),
        (
            "unparseable_number",
            any_true(~F.col(c).rlike(integer) | F.col(c).isNull() for c in INTEGER_COLUMNS[2:]),
        ),
        ("unparseable_date", F.to_date("admission_date", "yyyy-MM-dd").isNull()),
    ]
    for column, (low, high) in ranges.items():
        value = F.col(column).cast("long")
        checks.append((f"impossible_{column}", (value < low) | (value > high)))
    for column, ids in known_ids.items():
        checks.append((f"unknown_{column}", ~F.col(column).cast("int").isin(*ids)))
    for column, allowed in allowed_values.items():
        checks.append((f"unknown_{column}", F.col(column).isNull() | ~F.col(column).isin(*allowed)))
    drugs = [snake_case(d) for d in DRUG_COLUMNS]
    checks.append(("unknown_drug_value", any_true(~F.col(d).isin(*DRUG_VALUES) for d in drugs)))
    return F.coalesce(*[F.when(broken, F.lit(name)) for name, broken in checks])


def any_true(conditions) -> Column:
    """OR of ``conditions``, a null counting as false."""
    result = F.lit(False)
    for condition in conditions:
        result = result | F.coalesce(condition, F.lit(False))
    return result


def _cast_types(df: DataFrame) -> DataFrame:
    casts = {c: F.col(c).cast("long" if c in ("encounter_id", "patient_nbr") else "int")
             for c in INTEGER_COLUMNS}  # fmt: skip
    casts["admission_date"] = F.to_date("admission_date", "yyyy-MM-dd")
    return df.withColumns(casts)


def _describe_ids(df: DataFrame, id_mapping: pd.DataFrame) -> DataFrame:
    for column in ID_COLUMNS:
        pairs = id_mapping.loc[id_mapping["id_column"] == column, ["id", "description"]]
        lookup = F.create_map(*[F.lit(v) for row in pairs.itertuples(index=False) for v in row])
        df = df.withColumn(column.removesuffix("_id"), lookup[F.col(column)])
    return df


def _quality_report(
    checked: DataFrame, copies: DataFrame, excluded_ids: tuple[int, ...], run_date: str
) -> dict[str, Any]:
    per_rule = (
        checked.groupBy("_dq_rule")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.array_sort(F.collect_set("_data_source")).alias("sources"),
        )
        .collect()
    )
    by_rule = {row["_dq_rule"]: int(row["rows"]) for row in per_rule}
    sources = next((row["sources"] for row in per_rule if row["_dq_rule"] is None), [])
    valid_rows = by_rule.pop(None, 0)
    excluded = _death_or_hospice(F.col("_latest.discharge_disposition_id"), excluded_ids)
    totals = copies.agg(
        F.count(F.lit(1)).alias("rows"), F.sum(excluded.cast("int")).alias("excluded")
    ).first()
    silver_rows, excluded_rows = int(totals["rows"]), int(totals["excluded"] or 0)
    return {
        "run_date": run_date,
        "data_source": ",".join(sources),
        "bronze_rows": valid_rows + sum(by_rule.values()),
        "quarantined_rows": sum(by_rule.values()),
        "quarantined_by_rule": dict(sorted(by_rule.items())),
        "duplicates_removed": valid_rows - silver_rows,
        "silver_rows": silver_rows,
        "excluded_death_or_hospice": excluded_rows,
        "model_population": silver_rows - excluded_rows,
    }
