"""Silver: the bronze rows landed up to ``run_date``, cleaned, validated and deduplicated.

Updated incrementally (:func:`update_silver`): only extracts that are new or changed since the
published silver (by content hash, from bronze's summary) are read and checked, since every
quality rule is row-level. Silver is partitioned by admission month and rewritten by partition;
de-duplication stays over the whole table (an encounter re-sent later replaces the earlier copy
wherever that copy lives). The result is the table a full rebuild gives (``full_rebuild: true``),
so re-running or backfilling a date gives the same table and never duplicates rows.
``data_quality`` is checked before any row is touched: a mistyped rule would otherwise quarantine
good rows, or pass bad ones, without an error.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from itertools import groupby
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StructField, StructType

from readmit_kedro.features.expressions import (
    DATE_PATTERN,
    Expr,
    Program,
    any_true,
    coalesce,
    col,
    lit,
    to_spark,
    when,
)
from readmit_kedro.io.published import TableSnapshot, TableUpdate, driver_rows_frame
from readmit_kedro.pipelines.data_processing.ordering import (
    ORDERING_COLUMNS,
    PERIODS,
    add_counts,
    counts_for_report,
    ordering_section,
    period_count_change,
    period_counts,
)
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
    """Silver rebuilt from the given bronze rows: nulls, types, names, validation, dedupe, IDs.

    Returns the silver table, the quarantine (failing rows with the first rule they broke) and a
    quality report whose counts add up: bronze = silver + quarantined + duplicates removed. The
    reference that :func:`update_silver` matches, update after update.
    """
    rules = QualityRules.parse(data_quality)
    run = RunDate.parse(run_date)
    checked = _checked(bronze.where(F.col("_extract_month") <= run.month), id_mapping, rules)
    checked = checked.cache()
    excluded_ids = rules.death_or_hospice_discharge_ids
    valid = _to_silver(checked.where(F.col("_dq_rule").isNull()), id_mapping, excluded_ids)
    silver = _latest_per_encounter(valid)
    counts = period_counts(silver, rules.ordering_checks["period"])
    report = _report(_spark_stats(checked, {}), counts, rules, run.iso)
    logger.info("Silver quality report: %s", report)
    for warning in report["ordering_warnings"]:
        logger.warning("Silver ordering check: %s", warning)
    return silver, checked.where(F.col("_dq_rule").isNotNull()), report


PARTITION_KEY = "admission_month"  # silver and gold are partitioned by admission month
QUARANTINE_KEY = "extract"  # the quarantine by the extract its rows came in


def admission_month(admission_date: Column) -> Column:
    """The partition of a silver or gold row: its admission month, ``YYYY-MM``."""
    return F.date_format(admission_date, "yyyy-MM")


def update_silver(
    bronze: DataFrame,
    bronze_files: dict[str, Callable[[], pd.DataFrame]],
    ingestion: dict[str, Any],
    previous: TableSnapshot,
    id_mapping: pd.DataFrame,
    run_date: str,
    data_quality: dict[str, Any],
    full_rebuild: bool,
    driver_max_rows: int,
) -> tuple[TableUpdate, TableUpdate, dict[str, Any]]:
    """Bring silver (and its quarantine and quality report) up to the extracts in scope.

    Compares the extracts bronze holds for ``run_date`` (``ingestion["extracts"]``: name ->
    sha256) with those the published silver was built from (its manifest's state): new or
    changed extracts are checked and merged; extracts whose content changed or that left the
    scope (a backfill of an earlier date) lose their rows. Encounters touched either way are
    deduplicated again over every copy silver or bronze holds, and only the admission months they
    live in are rewritten. ``full_rebuild`` (or no usable previous version) rebuilds from bronze.
    The report is the full rebuild's: per-extract counts are kept in the state, and so are the
    per-period counts (rows, exclusions, ordering checks), updated by subtracting the affected
    patients' old rows and adding their new ones (the checks never look across patients).
    An incremental run checks at most ``driver_max_rows`` new rows on the driver (``bronze_files``,
    read with pandas, through the same rules the scoring service applies), not as Spark queries.
    """
    rules = QualityRules.parse(data_quality)
    run = RunDate.parse(run_date)
    in_scope = {n: e for n, e in ingestion["extracts"].items() if _month_of(n) <= run.month}
    rules_used = _rules_fingerprint(data_quality, id_mapping)
    full = (
        bool(full_rebuild) or not previous.partitioned or previous.state.get("rules") != rules_used
    )  # rules or ID mapping changed since silver was built: every extract is checked again
    done = {} if full else previous.state.get("extracts", {})
    changed = sorted(n for n in in_scope if done.get(n, {}).get("sha256") != in_scope[n]["sha256"])
    dropped = sorted(n for n in done if n not in in_scope or n in changed)
    files = {n: in_scope[n]["source_file"] for n in changed}
    landed = None if full else _landed(bronze_files, changed, in_scope, driver_max_rows)
    if landed is None:
        new = _check_with_spark(bronze, files, in_scope, id_mapping, rules)
    else:
        new = _check_on_driver(landed, files, id_mapping, data_quality, previous, bronze)
    extracts = {n: e for n, e in done.items() if n not in dropped}
    extracts.update({n: {"sha256": in_scope[n]["sha256"], **new.stats.get(n, {})} for n in changed})
    period = rules.ordering_checks["period"]
    if full:
        merged = _Merged(_latest_per_encounter(new.valid), [], [], [])
    else:
        dropped_files = [done[n].get("source_file") or "" for n in dropped]
        merged = _merge(previous, new, bronze, in_scope, changed, dropped_files, id_mapping, rules)
    rewritten = merged.rows.withColumn(
        PARTITION_KEY, admission_month(F.col("admission_date"))
    ).cache()
    replaced = merged.months
    kept_counts = previous.state.get("ordering", {})
    if full or kept_counts.get("period") != period:
        whole = rewritten.drop(PARTITION_KEY)
        if not full:
            untouched = previous.read(sorted(set(previous.partitions) - set(replaced)))
            whole = untouched.unionByName(whole)
        counts = period_counts(whole, period)
    else:  # only the affected patients' rows can change their counts: subtract old, add new
        change = period_count_change(merged.patient_rows_before, merged.patient_rows_after, period)
        counts = add_counts(kept_counts["counts"], change)
    report = _report(extracts, counts, rules, run.iso)
    logger.info(
        "Silver: %d new or changed extract(s), %d dropped; %s", len(changed), len(dropped),
        "full rebuild" if full else f"{len(replaced)} admission month(s) rewritten",
    )  # fmt: skip
    logger.info("Silver quality report: %s", report)
    for warning in report["ordering_warnings"]:
        logger.warning("Silver ordering check: %s", warning)
    state = {
        "rules": rules_used,
        "extracts": dict(sorted(extracts.items())),
        "ordering": {"period": period, "counts": counts},
    }
    silver = TableUpdate(PARTITION_KEY, rewritten, tuple(replaced), state, full, previous)
    quarantine = TableUpdate(
        QUARANTINE_KEY,
        new.quarantine,
        tuple(dropped),
        {"extracts": sorted(extracts)},
        full,
    )
    return quarantine, silver, report


def _fingerprint(*parts: Any) -> str:
    """sha256 of the parameters a table was built with: a change means a full rebuild."""
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _rules_fingerprint(data_quality: dict[str, Any], id_mapping: pd.DataFrame) -> str:
    return _fingerprint(data_quality, id_mapping.to_csv(index=False))


def _month_of(extract: str) -> str:
    match = re.search(r"(\d{4}-\d{2})", extract)
    if not match:
        raise ValueError(f"Extract {extract!r}: name carries no YYYY-MM extract month")
    return match.group(1)


def _extract_name(source_file: Column, files: dict[str, str]) -> Column:
    result = F.lit(None).cast("string")
    for name, file in files.items():
        result = F.when(source_file == file, F.lit(name)).otherwise(result)
    return result


def _checked(rows: DataFrame, id_mapping: pd.DataFrame, rules: QualityRules) -> DataFrame:
    """Bronze rows renamed and tagged with the first rule they break (``_dq_rule``)."""
    if "_parse_error" not in rows.columns:  # bronze written before rows were split strictly
        rows = rows.withColumn("_parse_error", F.lit(None).cast("string"))
    renamed = rows.select(
        *[to_spark(_null_if_missing(col(c))).alias(snake_case(c)) for c in LANDING_COLUMNS],
        *[c for c in rows.columns if c.startswith("_")],
    )
    broken = first_broken_rule(col, id_mapping, rules)
    return renamed.withColumn("_dq_rule", to_spark(broken))


def _to_silver(
    valid: DataFrame, id_mapping: pd.DataFrame, excluded_ids: tuple[int, ...]
) -> DataFrame:
    """Valid rows in silver's shape (types, ID descriptions, exclusion flag), not yet deduplicated."""
    typed = {e.name: to_spark(e) for e in silver_values(col, id_mapping, excluded_ids)}
    return valid.drop("_dq_rule", "_parse_error").withColumns(typed)


Source = Callable[[str], Expr]  # a checked (string) silver column by name, as an expression


def landing_source(column: str) -> Expr:
    """A checked silver column computed from the landing record itself (the driver's input)."""
    if column.startswith("_"):
        return col(column)
    return _null_if_missing(col(_LANDING_NAMES[column]))


_LANDING_NAMES = {snake_case(c): c for c in LANDING_COLUMNS}


class DriverRules:
    """Silver's row rules for some landing records on the driver, without Spark.

    Compiled once per ID mapping and ``data_quality`` (the scoring service builds one at start),
    so a request pays only the evaluation. Same expressions as :func:`build_silver`, so the same
    verdicts and values.
    """

    def __init__(self, id_mapping: pd.DataFrame, data_quality: dict[str, Any]) -> None:
        rules = QualityRules.parse(data_quality)
        self._checks = quality_checks(landing_source, id_mapping, rules)
        excluded = rules.death_or_hospice_discharge_ids
        rule = first_broken_rule(landing_source, id_mapping, rules).alias("_dq_rule")
        self._rows = Program([*silver_values(landing_source, id_mapping, excluded), rule])
        self._strings = Program([landing_source(c).alias(c) for c in SILVER_COLUMNS])
        self._broken = Program(  # a null check is not broken, as in batch's when()
            [coalesce(c.broken, lit(False)).alias(str(i)) for i, c in enumerate(self._checks)]
        )

    def silver_rows(self, landing_columns: Mapping[str, Any]) -> dict[str, Any]:
        """Silver's columns for every record, typed as batch silver types them, and ``_dq_rule``:
        the first quality rule the record breaks (None when valid; the other columns of such a
        record are meaningless).

        ``landing_columns`` maps each landing column (and ``_parse_error``, null for records that
        were not split from a CSV line) to equal-length lists of strings or None.
        """
        return _evaluate(self._rows, landing_columns)

    def checked_strings(self, landing_columns: Mapping[str, Any]) -> dict[str, Any]:
        """Silver's columns before typing (trimmed, ``?`` and empty as null), as the quarantine
        keeps them, for landing records as :meth:`silver_rows` takes them."""
        return _evaluate(self._strings, landing_columns)

    def broken_rules(self, landing_columns: Mapping[str, Any]) -> list[list[tuple[str, str]]]:
        """Per landing record (as :meth:`silver_rows` takes them), every (landing column, rule)
        of the quality checks it breaks, in rule order: what a rejected request is told."""
        broken = _evaluate(self._broken, landing_columns)
        names = [(_LANDING_NAMES.get(c.column, c.column), c.rule) for c in self._checks]
        flags = np.column_stack([np.asarray(v, dtype=bool) for v in broken.values()])
        return [[n for n, hit in zip(names, row, strict=True) if hit] for row in flags.tolist()]


def _evaluate(program: Program, columns: Mapping[str, Any]) -> dict[str, Any]:
    """The program's outputs for landing columns (every input is a string, as landed)."""
    return program.evaluate(columns, dict.fromkeys(program.inputs, "string"))


@dataclass
class _NewRows:
    """The new or changed extracts' rows, checked, as silver and its quarantine take them."""

    valid: DataFrame  # valid rows in silver's shape, not yet deduplicated
    quarantine: Any  # rows that broke a rule, with their extract: Spark DataFrame or Arrow table
    stats: dict[str, dict[str, Any]]  # per extract: rows per rule, data sources (_extract_stats)
    keys: list[dict[str, Any]] | None = None  # encounter_id, patient_nbr, month "m" of valid rows

    def valid_keys(self) -> list[dict[str, Any]]:
        if self.keys is None:
            month = admission_month(F.col("admission_date")).alias("m")
            rows = self.valid.select("encounter_id", "patient_nbr", month).collect()
            self.keys = [row.asDict() for row in rows]
        return self.keys


def _check_with_spark(
    bronze: DataFrame,
    files: dict[str, str],
    in_scope: dict[str, dict[str, str]],
    id_mapping: pd.DataFrame,
    rules: QualityRules,
) -> _NewRows:
    """The extracts ``files`` (name -> source file) of bronze checked by Spark queries."""
    shas = {in_scope[n]["sha256"] for n in files}
    new_rows = bronze.where(
        F.col("_source_file").isin(*files.values()) & F.col("_source_sha256").isin(*shas)
    )
    checked = _checked(new_rows, id_mapping, rules).cache()
    excluded_ids = rules.death_or_hospice_discharge_ids
    return _NewRows(
        _to_silver(checked.where(F.col("_dq_rule").isNull()), id_mapping, excluded_ids),
        checked.where(F.col("_dq_rule").isNotNull()).withColumn(
            QUARANTINE_KEY, _extract_name(F.col("_source_file"), files)
        ),
        _spark_stats(checked, {f: n for n, f in files.items()}),
    )


def _spark_stats(checked: DataFrame, names: dict[str, str]) -> dict[str, dict[str, Any]]:
    """:func:`_extract_stats` of checked rows, counted by one Spark query."""
    groups = (
        checked.groupBy("_source_file", "_dq_rule")
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.array_sort(F.collect_set("_data_source")).alias("sources"),
        )
        .collect()
    )
    return _extract_stats([tuple(g) for g in groups], names)


def _landed(
    bronze_files: dict[str, Callable[[], pd.DataFrame]],
    changed: list[str],
    in_scope: dict[str, dict[str, str]],
    limit: int,
) -> pd.DataFrame | None:
    """The bronze rows of the changed extracts as one pandas frame; None when there are none or
    more than ``limit`` (Spark checks those), so memory never holds more than ``limit`` rows
    plus one extract."""
    frames, rows = [], 0
    for name in changed:
        if name not in bronze_files:
            return None
        frame = bronze_files[name]()
        frame = frame[frame["_source_sha256"] == in_scope[name]["sha256"]]
        rows += len(frame)
        if rows > limit:
            return None
        frames.append(frame)
    return pd.concat(frames, ignore_index=True) if frames else None


def _check_on_driver(
    landed: pd.DataFrame,
    files: dict[str, str],
    id_mapping: pd.DataFrame,
    data_quality: dict[str, Any],
    previous: TableSnapshot,
    bronze: DataFrame,
) -> _NewRows:
    """:func:`_check_with_spark` for bronze rows held on the driver, through :class:`DriverRules`
    (the same expressions); valid rows go to Spark as Arrow, in silver's published schema."""
    if "_parse_error" not in landed.columns:  # bronze written before rows were split strictly
        landed = landed.assign(_parse_error=None)
    rules = DriverRules(id_mapping, data_quality)
    landing = {c: landed[c] for c in (*LANDING_COLUMNS, "_parse_error")}
    values = rules.silver_rows(landing)
    rule = values.pop("_dq_rule")
    broken = ~pd.isna(rule)
    meta = [c for c in landed.columns if c.startswith("_")]
    names = {f: n for n, f in files.items()}
    strings = rules.checked_strings(landing)
    quarantine = {
        **{c: strings[c][broken] for c in SILVER_COLUMNS},
        **{c: landed[c][broken] for c in meta},
        "_dq_rule": rule[broken],
        QUARANTINE_KEY: landed["_source_file"][broken].map(names),
    }
    valid = {
        **{c: v[~broken] for c, v in values.items()},
        **{c: landed[c][~broken] for c in meta if c != "_parse_error"},
    }
    schema = StructType.fromJson(json.loads(previous.manifest["schema"]))
    groups = pd.DataFrame(
        {"file": landed["_source_file"], "rule": rule, "source": landed["_data_source"]}
    ).groupby(["file", "rule"], dropna=False)["source"]
    months = np.datetime_as_string(valid["admission_date"].astype("datetime64[M]"))
    return _NewRows(
        driver_rows_frame(bronze.sparkSession, pa.table(valid), schema),
        pa.table(quarantine),
        _extract_stats(
            [(f, r, len(s), sorted(s.dropna().unique())) for (f, r), s in groups],
            names,
        ),
        [
            {"encounter_id": int(e), "patient_nbr": int(p), "m": m}
            for e, p, m in zip(valid["encounter_id"], valid["patient_nbr"], months, strict=True)
        ],
    )


def _extract_stats(
    groups: list[tuple[str, str | None, int, list[str]]], names: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """Per extract: rows per broken rule (``valid`` for none) and the data sources of valid rows,
    from (source file, rule, rows, sorted data sources) per file and rule."""
    stats: dict[str, dict[str, Any]] = {}
    for source_file, rule, rows, sources in groups:
        entry = stats.setdefault(
            names.get(source_file, source_file),
            {"source_file": source_file, "rows": {}, "sources": []},
        )
        entry["rows"][rule if isinstance(rule, str) else "valid"] = int(rows)
        if not isinstance(rule, str):
            entry["sources"] = list(sources)
    return stats


def _latest_per_encounter(candidates: DataFrame) -> DataFrame:
    """One row per encounter_id: the latest copy (last extract month, file, row), as full rebuilds keep."""
    return _latest_copy_only(candidates, _copies_per_encounter(candidates))


NARROW = (*ORDERING_COLUMNS, "excluded_from_model", "_source_file")


@dataclass
class _Merged:
    rows: DataFrame  # the rewritten admission months, complete
    months: list[str]  # which months they are
    # narrow rows of the affected patients after the update, and before (a few per new encounter)
    patient_rows_after: list[dict[str, Any]]
    patient_rows_before: list[dict[str, Any]]


def _merge(
    previous: TableSnapshot,
    new: _NewRows,
    bronze: DataFrame,
    in_scope: dict[str, dict[str, str]],
    changed: list[str],
    dropped_files: list[str],
    id_mapping: pd.DataFrame,
    rules: QualityRules,
) -> _Merged:
    """The rewritten admission months: silver's rows there, with every touched encounter
    deduplicated again over all its copies; and the affected patients' rows before and after.

    Touched: encounters with a new copy, and encounters whose kept copy came from an extract that
    left (changed or out of scope). Affected patients: the patients of touched rows, old or new.
    """
    new_valid = new.valid
    spark = new_valid.sparkSession
    new_keys = new.valid_keys()
    ids = {int(r["encounter_id"]) for r in new_keys}
    patients = {int(r["patient_nbr"]) for r in new_keys}
    months = {r["m"] for r in new_keys}
    scanned = set(patients)
    dropped = set(dropped_files)
    held = _scan(previous, ids, patients, dropped)
    hits = [r for r in held.values() if r["encounter_id"] in ids or r["_source_file"] in dropped]
    lost = {r["encounter_id"] for r in hits if r["_source_file"] in dropped}
    touched = ids | {r["encounter_id"] for r in hits}
    months |= {r["admission_date"].strftime("%Y-%m") for r in hits}
    candidates = new_valid
    if lost:  # their kept copy is gone: the next best copy may be one silver never kept
        changed_files = [in_scope[n]["source_file"] for n in changed]
        kept = bronze.where(
            ~F.col("_source_file").isin(*changed_files, *dropped_files)
            & F.col("_source_file").isin(*[e["source_file"] for e in in_scope.values()])
            & F.trim(F.col("encounter_id")).cast("long").isin(*sorted(lost))
        )
        recheck = _checked(kept, id_mapping, rules).where(F.col("_dq_rule").isNull())
        again = _to_silver(recheck, id_mapping, rules.death_or_hospice_discharge_ids).where(
            F.col("encounter_id").isin(*sorted(lost))
        )
        found = again.select(
            "patient_nbr", admission_month(F.col("admission_date")).alias("m")
        ).collect()
        months |= {r["m"] for r in found}
        patients |= {int(r["patient_nbr"]) for r in found}
        candidates = candidates.unionByName(again)
    affected = patients | {r["patient_nbr"] for r in hits}
    missing = affected - scanned
    if missing:  # patients of re-sent or withdrawn encounters: all their rows count
        held.update(_scan(previous, set(), missing, set()))
    rewritten_months = sorted(months)
    old = previous.read(rewritten_months)
    ids_schema = StructType([StructField("encounter_id", LongType())])
    touched_ids = F.broadcast(
        driver_rows_frame(spark, [{"encounter_id": i} for i in sorted(touched)], ids_schema)
    )
    keep = old.join(touched_ids, "encounter_id", "left_anti")
    survivors = old.join(touched_ids, "encounter_id", "left_semi")
    if dropped_files:
        survivors = survivors.where(~F.col("_source_file").isin(*dropped_files))
    winners = _latest_per_encounter(survivors.unionByName(candidates)).cache()
    before = [r for r in held.values() if r["patient_nbr"] in affected]
    still = [r for r in before if r["encounter_id"] not in touched]
    after = still + [r.asDict() for r in winners.select(*NARROW).collect()]
    return _Merged(keep.unionByName(winners), rewritten_months, after, before)


def _scan(
    previous: TableSnapshot, ids: set[int], patients: set[int], files: set[str]
) -> dict[int, dict[str, Any]]:
    """Silver's narrow rows of these encounters, patients or source files, by encounter_id."""
    rows = previous.matching_rows(
        list(NARROW), {"encounter_id": ids, "patient_nbr": patients, "_source_file": files}
    )
    return {r["encounter_id"]: r for r in rows}


def _report(
    extracts: dict[str, dict[str, Any]],
    counts: dict[str, dict[str, int]],
    rules: QualityRules,
    run_date: str,
) -> dict[str, Any]:
    """The quality report of the whole table: per-extract counts and per-period counts summed."""
    by_rule: dict[str, int] = {}
    valid_rows, sources = 0, set()
    for entry in extracts.values():
        for rule, rows in entry.get("rows", {}).items():
            if rule == "valid":
                valid_rows += rows
            else:
                by_rule[rule] = by_rule.get(rule, 0) + rows
        sources |= set(entry.get("sources", []))
    silver_rows = sum(c["rows"] for c in counts.values())
    excluded_rows = sum(c["excluded"] for c in counts.values())
    report = {
        "run_date": run_date,
        "data_source": ",".join(sorted(sources)),
        "bronze_rows": valid_rows + sum(by_rule.values()),
        "quarantined_rows": sum(by_rule.values()),
        "quarantined_by_rule": dict(sorted(by_rule.items())),
        "duplicates_removed": valid_rows - silver_rows,
        "silver_rows": silver_rows,
        "excluded_death_or_hospice": excluded_rows,
        "model_population": silver_rows - excluded_rows,
    }
    report.update(ordering_section(counts_for_report(counts), rules.ordering_checks))
    return report


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


def _null_if_missing(value: Expr) -> Expr:
    """Trimmed, with the UCI's ``?`` and an empty field as null."""
    trimmed = value.trim()
    return when(~trimmed.isin("?", ""), trimmed)


INTEGER = r"^-?[0-9]+$"


class QualityCheck(NamedTuple):
    """One column's test of one rule: ``broken`` is true where the row breaks it there."""

    rule: str
    column: str  # a silver column name (``_parse_error`` for a malformed line)
    broken: Expr


def quality_checks(
    source: Source, id_mapping: pd.DataFrame, rules: QualityRules
) -> tuple[QualityCheck, ...]:
    """Every column-level check of the data-quality rules, rules in their stable order.

    Batch silver keeps the first rule a row breaks (:func:`first_broken_rule`); the service
    names each column and rule a request breaks, from the same checks.
    """
    checks = [QualityCheck("malformed_row", "_parse_error", ~source("_parse_error").isnull())]
    for column in ("encounter_id", "patient_nbr"):
        key = source(column)
        checks.append(QualityCheck("missing_key", column, key.isnull() | ~key.rlike(INTEGER)))
    for column in INTEGER_COLUMNS[2:]:
        value = source(column)
        checks.append(
            QualityCheck("unparseable_number", column, ~value.rlike(INTEGER) | value.isnull())
        )
    date = source("admission_date").to_date(DATE_PATTERN)
    checks.append(QualityCheck("unparseable_date", "admission_date", date.isnull()))
    for column, (low, high) in rules.ranges.items():
        value = source(column).parse_int("long")
        checks.append(QualityCheck(f"impossible_{column}", column, (value < low) | (value > high)))
    for column in ID_COLUMNS:
        ids = [int(i) for i in id_mapping.loc[id_mapping["id_column"] == column, "id"]]
        known = source(column).parse_int("int").isin(*ids)
        checks.append(QualityCheck(f"unknown_{column}", column, ~known))
    for column, allowed in rules.allowed_values.items():
        value = source(column)
        checks.append(
            QualityCheck(f"unknown_{column}", column, value.isnull() | ~value.isin(*allowed))
        )
    for column in map(snake_case, DRUG_COLUMNS):
        checks.append(
            QualityCheck("unknown_drug_value", column, ~source(column).isin(*DRUG_VALUES))
        )
    return tuple(checks)


def first_broken_rule(source: Source, id_mapping: pd.DataFrame, rules: QualityRules) -> Expr:
    """The first data-quality rule a row breaks (null when it breaks none), in a stable order."""
    checks = groupby(quality_checks(source, id_mapping, rules), key=lambda check: check.rule)
    return coalesce(*[when(any_true(c.broken for c in same), lit(rule)) for rule, same in checks])


def silver_values(
    source: Source, id_mapping: pd.DataFrame, excluded_ids: tuple[int, ...]
) -> tuple[Expr, ...]:
    """Silver's columns of a valid row, in silver's order: the landing columns with integers and
    the date parsed, then each ID's description and the exclusion flag (death or hospice
    discharges, whom nobody can readmit)."""
    integers = {
        c: "long" if c in ("encounter_id", "patient_nbr") else "int" for c in INTEGER_COLUMNS
    }
    columns = [
        source(c).parse_int(integers[c]) if c in integers
        else source(c).to_date(DATE_PATTERN) if c == "admission_date"
        else source(c)
        for c in SILVER_COLUMNS
    ]  # fmt: skip
    values = [value.alias(name) for value, name in zip(columns, SILVER_COLUMNS, strict=True)]
    for column in ID_COLUMNS:
        pairs = id_mapping.loc[id_mapping["id_column"] == column, ["id", "description"]]
        ids = source(column).parse_int("int")
        values.append(ids.lookup(dict(pairs.itertuples(index=False))).alias(column[:-3]))
    flag = source("discharge_disposition_id").parse_int("int").isin(*excluded_ids)
    return (*values, flag.alias("excluded_from_model"))
