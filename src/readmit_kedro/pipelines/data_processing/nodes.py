"""Medallion nodes. Bronze keeps extracts as sent; silver cleans and validates; gold builds the stores.

Every node is a pure function of its inputs and ``run_date``: silver and gold are recomputed from the
bronze extracts landed up to ``run_date``, so re-running a date (an Airflow retry or backfill) gives the
same tables and never duplicates rows.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from readmit_kedro.io.extracts import LandingExtract
from readmit_kedro.pipelines.data_processing.ordering import ordering_report
from readmit_kedro.schema import (
    DRUG_COLUMNS,
    DRUG_VALUES,
    GOLD_FEATURE_STORE_COLUMNS,
    GOLD_LABEL_STORE_COLUMNS,
    LANDING_COLUMNS,
    NUMERIC_FEATURES,
)

logger = logging.getLogger(__name__)

_EXTRACT_MONTH = re.compile(r"(\d{4}-\d{2})")
_INTEGER_COLUMNS = (
    "encounter_id", "patient_nbr", "admission_type_id", "discharge_disposition_id",
    "admission_source_id", "time_in_hospital", "num_lab_procedures", "num_procedures",
    "num_medications", "number_outpatient", "number_emergency", "number_inpatient",
    "number_diagnoses",
)  # fmt: skip
_ID_COLUMNS = ("admission_type_id", "discharge_disposition_id", "admission_source_id")


def _snake_case(name: str) -> str:
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).replace("-", "_")
    return name.lower()


def _run_month(run_date: str) -> str:
    return date.fromisoformat(str(run_date)).strftime("%Y-%m")


def _extract_month(partition_id: str) -> str:
    match = _EXTRACT_MONTH.search(partition_id)
    if not match:
        raise ValueError(f"Landing file {partition_id!r}: name carries no YYYY-MM extract month")
    return match.group(1)


# ---------------------------------------------------------------------------------------------- bronze
def ingest_extracts(
    landing: dict[str, Callable[[], LandingExtract]],
    bronze_inventory: list[str],
    landing_source: dict[str, Any],
    run_date: str,
) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """Copy each extract landed up to ``run_date`` and not yet in bronze into Parquet, as sent.

    Every new extract is checked for the landing schema before anything is returned, so a file
    with a missing or renamed column stops the run with nothing written.
    """
    run_month = _run_month(run_date)
    in_scope = sorted(p for p in landing if _extract_month(p) <= run_month)
    if not in_scope:
        raise ValueError(
            f"No landing extract up to {run_month}: land data first (readmit data land)"
        )
    new_ids = [p for p in in_scope if p not in set(bronze_inventory)]
    ingested_at = datetime.now(tz=UTC).isoformat(timespec="seconds")
    extracts = {p: landing[p]() for p in new_ids}
    for extract in extracts.values():
        _check_landing_columns(extract)
    bronze = {
        p: _to_bronze(e, run_date, ingested_at, landing_source.get("data_source", "unknown"))
        for p, e in extracts.items()
    }
    summary = {
        "run_date": str(run_date),
        "extracts_in_scope": len(in_scope),
        "new_extracts": new_ids,
        "new_rows": int(sum(len(f) for f in bronze.values())),
        "data_source": landing_source.get("data_source", "unknown"),
    }
    logger.info(
        "Bronze: %d new extract(s), %d new row(s); %d already ingested",
        len(new_ids),
        summary["new_rows"],
        len(in_scope) - len(new_ids),
    )
    return bronze, summary


def _check_landing_columns(extract: LandingExtract) -> None:
    columns = list(extract.frame.columns)
    missing = [c for c in LANDING_COLUMNS if c not in columns]
    unexpected = [c for c in columns if c not in LANDING_COLUMNS]
    if missing or unexpected:
        raise ValueError(
            f"Landing file {extract.source_file}: column(s) {missing} missing"
            + (f", unexpected column(s) {unexpected}" if unexpected else "")
            + "; the extract does not follow the UCI layout. Nothing was written."
        )
    if extract.frame.empty:
        raise ValueError(f"Landing file {extract.source_file}: header only, no rows")


def _to_bronze(
    extract: LandingExtract, batch_id: str, ingested_at: str, data_source: str
) -> pd.DataFrame:
    frame = extract.frame[list(LANDING_COLUMNS)].copy()
    frame["_source_file"] = extract.source_file
    frame["_source_sha256"] = extract.sha256
    frame["_extract_month"] = _extract_month(extract.source_file)
    frame["_row_number"] = range(1, len(frame) + 1)
    frame["_batch_id"] = str(batch_id)
    frame["_ingested_at"] = ingested_at
    frame["_data_source"] = data_source
    return frame


# ---------------------------------------------------------------------------------------------- silver
def build_silver(
    bronze: DataFrame, id_mapping: pd.DataFrame, run_date: str, rules: dict[str, Any]
) -> tuple[DataFrame, DataFrame, dict[str, Any]]:
    """Clean the bronze rows in scope: nulls, types, names, validation, dedupe, ID descriptions.

    Returns the silver table, the quarantine (failing rows with the first rule they broke) and a
    quality report whose counts add up: bronze = silver + quarantined + duplicates removed.
    """
    scoped = bronze.where(F.col("_extract_month") <= _run_month(run_date))
    renamed = scoped.select(
        *[_null_if_missing(c).alias(_snake_case(c)) for c in LANDING_COLUMNS],
        *[c for c in scoped.columns if c.startswith("_")],
    )
    checked = renamed.withColumn("_dq_rule", _first_broken_rule(renamed, id_mapping, rules))
    checked = checked.cache()
    quarantine = checked.where(F.col("_dq_rule").isNotNull())
    valid = checked.where(F.col("_dq_rule").isNull()).drop("_dq_rule")
    excluded_ids = rules["death_or_hospice_discharge_ids"]
    copies = _copies_per_encounter(valid).cache()
    silver = _describe_ids(_cast_types(_latest_copy_only(valid, copies)), id_mapping)
    silver = silver.withColumn(
        "excluded_from_model", _death_or_hospice(F.col("discharge_disposition_id"), excluded_ids)
    )
    report = _quality_report(checked, copies, excluded_ids, run_date)
    report.update(ordering_report(silver, rules["ordering_checks"]))
    logger.info("Silver quality report: %s", report)
    for warning in report["ordering_warnings"]:
        logger.warning("Silver ordering check: %s", warning)
    return silver, quarantine, report


def _death_or_hospice(discharge_disposition_id: Column, excluded_ids: list[int]) -> Column:
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


def _first_broken_rule(df: DataFrame, id_mapping: pd.DataFrame, rules: dict[str, Any]) -> Column:
    """The first data-quality rule a row breaks (NULL when it breaks none), in a stable order."""
    integer = r"^-?[0-9]+$"
    known_ids = {
        col: [int(i) for i in id_mapping.loc[id_mapping["id_column"] == col, "id"]]
        for col in _ID_COLUMNS
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
            _any(~F.col(c).rlike(integer) | F.col(c).isNull() for c in _INTEGER_COLUMNS[2:]),
        ),
        ("unparseable_date", F.to_date("admission_date", "yyyy-MM-dd").isNull()),
    ]
    for column, (low, high) in rules["ranges"].items():
        value = F.col(column).cast("long")
        checks.append((f"impossible_{column}", (value < low) | (value > high)))
    for column, ids in known_ids.items():
        checks.append((f"unknown_{column}", ~F.col(column).cast("int").isin(*ids)))
    for column, allowed in rules["allowed_values"].items():
        checks.append((f"unknown_{column}", F.col(column).isNull() | ~F.col(column).isin(*allowed)))
    drugs = [_snake_case(d) for d in DRUG_COLUMNS]
    checks.append(("unknown_drug_value", _any(~F.col(d).isin(*DRUG_VALUES) for d in drugs)))
    return F.coalesce(*[F.when(broken, F.lit(name)) for name, broken in checks])


def _any(conditions) -> Column:
    result = F.lit(False)
    for condition in conditions:
        result = result | F.coalesce(condition, F.lit(False))
    return result


def _cast_types(df: DataFrame) -> DataFrame:
    casts = {c: F.col(c).cast("long" if c in ("encounter_id", "patient_nbr") else "int")
             for c in _INTEGER_COLUMNS}  # fmt: skip
    casts["admission_date"] = F.to_date("admission_date", "yyyy-MM-dd")
    return df.withColumns(casts)


def _describe_ids(df: DataFrame, id_mapping: pd.DataFrame) -> DataFrame:
    for column in _ID_COLUMNS:
        pairs = id_mapping.loc[id_mapping["id_column"] == column, ["id", "description"]]
        lookup = F.create_map(*[F.lit(v) for row in pairs.itertuples(index=False) for v in row])
        df = df.withColumn(column.removesuffix("_id"), lookup[F.col(column)])
    return df


def _quality_report(
    checked: DataFrame, copies: DataFrame, excluded_ids: list[int], run_date: str
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
        "run_date": str(run_date),
        "data_source": ",".join(sources),
        "bronze_rows": valid_rows + sum(by_rule.values()),
        "quarantined_rows": sum(by_rule.values()),
        "quarantined_by_rule": dict(sorted(by_rule.items())),
        "duplicates_removed": valid_rows - silver_rows,
        "silver_rows": silver_rows,
        "excluded_death_or_hospice": excluded_rows,
        "model_population": silver_rows - excluded_rows,
    }


# ------------------------------------------------------------------------------------------------ gold
def build_gold_features(silver: DataFrame, feature_rules: dict[str, Any]) -> DataFrame:
    """One row per encounter of the model population, with features known at discharge.

    Every feature comes from the encounter's own row. History is the source's own prior-year
    visit counts (``number_inpatient`` …), never counted across rows: the stand-in admission
    dates follow encounter_id, which stops being time order in mid-2007 (see the ordering checks
    of the quality report), so "earlier encounters of the patient" would count later ones there.
    """
    drugs = [_snake_case(d) for d in DRUG_COLUMNS]
    visits = ("number_outpatient", "number_emergency", "number_inpatient")
    features = silver.where(~F.col("excluded_from_model")).select(
        F.col("encounter_id"),
        F.col("patient_nbr"),
        F.col("admission_date"),
        F.year("admission_date").alias("admission_year"),
        (F.regexp_extract("age", r"\[(\d+)-", 1).cast("double") + 5).alias("age_years"),
        *[F.col(c).cast("double").alias(c) for c in NUMERIC_FEATURES[1:9]],
        sum((F.col(c) for c in visits), F.lit(0)).cast("double").alias("prior_year_visits"),
        _count_equal(drugs, *DRUG_VALUES[1:]).alias("n_meds_taken"),
        _count_equal(drugs, "Up").alias("n_meds_up"),
        _count_equal(drugs, "Down").alias("n_meds_down"),
        _category("race"),
        _category("gender"),
        _admission_type().alias("admission_type"),
        _grouped("admission_source_id", feature_rules["admission_source_groups"]).alias(
            "admission_source"
        ),
        _grouped("discharge_disposition_id", feature_rules["discharge_groups"]).alias(
            "discharge_group"
        ),
        _category("medical_specialty"),
        _category("payer_code"),
        *[_icd9_group(f"diag_{i}").alias(f"diag_{i}_group") for i in (1, 2, 3)],
        _category("max_glu_serum"),
        _category("a1_cresult").alias("a1c_result"),
        _category("insulin"),
        F.when(F.col("change") == "Ch", "Yes").otherwise("No").alias("med_change"),
        _category("diabetes_med"),
        *[_icd9_category(f"diag_{i}").alias(f"diag_{i}_code") for i in (1, 2, 3)],
        *[_id_code(c).alias(c.replace("_id", "_code")) for c in _ID_COLUMNS],
        F.col("_data_source").alias("data_source"),
    )
    return features.select(*GOLD_FEATURE_STORE_COLUMNS)


def build_gold_labels(silver: DataFrame) -> DataFrame:
    """The label store: 30-day readmission (the target) and any readmission, per encounter."""
    return (
        silver.where(~F.col("excluded_from_model"))
        .select(
            "encounter_id",
            "patient_nbr",
            "admission_date",
            F.year("admission_date").alias("admission_year"),
            (F.col("readmitted") == "<30").cast("int").alias("readmitted_30d"),
            (F.col("readmitted") != "NO").cast("int").alias("readmitted_any"),
        )
        .select(*GOLD_LABEL_STORE_COLUMNS)
    )


def _count_equal(columns: list[str], *values: str) -> Column:
    total = F.lit(0.0)
    for column in columns:
        total = total + F.col(column).isin(*values).cast("double")
    return total


def _category(column: str) -> Column:
    return F.coalesce(F.col(column), F.lit("Missing")).alias(column)


def _admission_type() -> Column:
    unknown = ("Not Available", "NULL", "Not Mapped")
    return F.when(F.col("admission_type").isin(*unknown), "Missing").otherwise(
        F.coalesce(F.col("admission_type"), F.lit("Missing"))
    )


def _grouped(column: str, groups: dict[str, list[int]]) -> Column:
    result = F.lit("Other")
    for group, ids in reversed(list(groups.items())):
        result = F.when(F.col(column).isin(*ids), group).otherwise(result)
    return result


def _icd9_category(column: str) -> Column:
    """The three-character ICD-9 category (``428.31`` -> ``428``, ``V57.1`` -> ``V57``).

    Finer than the Strack groups (about 700 categories; the encoder folds the rare ones), and
    still a property of the encounter alone.
    """
    return F.coalesce(F.split(F.col(column), r"\.").getItem(0), F.lit("Missing"))


def _id_code(column: str) -> Column:
    """An admission/discharge id as a category of its own, finer than the groups above."""
    return F.coalesce(F.col(column).cast("string"), F.lit("Missing"))


def _icd9_group(column: str) -> Column:
    """Diagnosis groups of Strack et al. (2014), the paper that published this dataset."""
    code = F.col(column)
    number = F.when(code.rlike(r"^[0-9]"), code.cast("double"))
    return (
        F.when(code.isNull(), "Missing")
        .when(code.startswith("250"), "Diabetes")
        .when(number.between(390, 459.99) | (F.floor(number) == 785), "Circulatory")
        .when(number.between(460, 519.99) | (F.floor(number) == 786), "Respiratory")
        .when(number.between(520, 579.99) | (F.floor(number) == 787), "Digestive")
        .when(number.between(800, 999.99), "Injury")
        .when(number.between(710, 739.99), "Musculoskeletal")
        .when(number.between(580, 629.99) | (F.floor(number) == 788), "Genitourinary")
        .when(number.between(140, 239.99), "Neoplasms")
        .otherwise("Other")
    )


# --------------------------------------------------------------------------------------------- signal
def decide_training_trigger(
    ingestion: dict[str, Any], quality: dict[str, Any], trigger: dict[str, Any]
) -> dict[str, Any]:
    """The "enough new data?" gate of the design, as a small JSON the Airflow DAG reads."""
    new_rows = int(ingestion["new_rows"])
    recommended = new_rows >= trigger["min_new_rows"]
    reason = (
        f"{new_rows} new rows >= {trigger['min_new_rows']}"
        if recommended
        else f"only {new_rows} new rows (< {trigger['min_new_rows']})"
    )
    return {
        "run_date": ingestion["run_date"],
        "new_extracts": ingestion["new_extracts"],
        "new_rows": new_rows,
        "model_population": quality["model_population"],
        "train_recommended": recommended,
        "reason": reason,
    }
