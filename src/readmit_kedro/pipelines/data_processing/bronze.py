"""Bronze: every landing extract up to ``run_date``, copied into Parquet as sent, once per content.

Nothing is cleaned here, so silver can always be rebuilt from bronze. An extract is identified by
the sha256 of its bytes: one already in bronze with the same hash is skipped, so re-running a date
(an Airflow retry or backfill) adds no rows; a file re-sent with new content is a correction and
replaces bronze's copy (silver then replaces that extract's rows).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import pandas as pd

from readmit_kedro.io.extracts import LandingExtract
from readmit_kedro.run_context import RunDate
from readmit_kedro.schema import LANDING_COLUMNS

logger = logging.getLogger(__name__)

_EXTRACT_MONTH = re.compile(r"(\d{4}-\d{2})")


def ingest_extracts(
    landing: dict[str, Callable[[], LandingExtract]],
    landing_hashes: dict[str, str],
    bronze_inventory: dict[str, dict[str, str]],
    landing_source: dict[str, Any],
    run_date: str,
) -> tuple[dict[str, Callable[[], pd.DataFrame]], dict[str, Any]]:
    """Copy each extract landed up to ``run_date`` whose content bronze lacks into Parquet, as sent.

    Every new extract is checked for the landing schema before anything is returned, so a file
    with a missing or renamed column stops the run with nothing written. The bronze copies are
    returned as lazy writers (Kedro's PartitionedDataset calls each when it saves it): memory
    holds one extract at a time, not a first run's whole history, at the price of reading each
    new extract twice. The summary names every extract in scope with its sha256 (``extracts``):
    silver's incremental update works from it.
    """
    run = RunDate.parse(run_date)
    in_scope = sorted(p for p in landing if _extract_month(p) <= run.month)
    if not in_scope:
        raise ValueError(
            f"No landing extract up to {run.month}: land data first (readmit data land)"
        )
    held = {p: bronze_inventory[p] for p in in_scope if p in bronze_inventory}
    new_ids = [p for p in in_scope if held.get(p, {}).get("sha256") != landing_hashes.get(p)]
    ingested_at = datetime.now(tz=UTC).isoformat(timespec="seconds")
    data_source = landing_source.get("data_source", "unknown")
    checked = {p: _checked_extract(landing[p]()) for p in new_ids}
    bronze = {
        p: partial(_write_bronze, landing[p], checked[p], run.iso, ingested_at, data_source)
        for p in new_ids
    }
    summary = {
        "run_date": run.iso,
        "extracts_in_scope": len(in_scope),
        "extracts": {
            p: {k: checked[p][k] for k in ("sha256", "source_file")} if p in checked else held[p]
            for p in in_scope
        },
        "new_extracts": new_ids,
        "corrected_extracts": [p for p in new_ids if p in bronze_inventory],
        "new_rows": int(sum(c["rows"] for c in checked.values())),
        "data_source": data_source,
    }
    logger.info(
        "Bronze: %d new extract(s), %d new row(s); %d already ingested",
        len(new_ids),
        summary["new_rows"],
        len(in_scope) - len(new_ids),
    )
    return bronze, summary


def _extract_month(partition_id: str) -> str:
    """The ``YYYY-MM`` an extract covers, from its file name (``diabetic_data_1999-01``)."""
    match = _EXTRACT_MONTH.search(partition_id)
    if not match:
        raise ValueError(f"Landing file {partition_id!r}: name carries no YYYY-MM extract month")
    return match.group(1)


def _checked_extract(extract: LandingExtract) -> dict[str, Any]:
    """What the summary needs of a new extract, once it passed the landing schema check."""
    _check_landing_columns(extract)
    return {
        "sha256": extract.sha256,
        "source_file": extract.source_file,
        "rows": len(extract.frame),
    }


def _write_bronze(
    load: Callable[[], LandingExtract],
    checked: dict[str, Any],
    batch_id: str,
    ingested_at: str,
    data_source: str,
) -> pd.DataFrame:
    """The bronze copy of an extract, read again when it is saved; refused if the file changed
    since it was checked (a delivery during the run), so bronze never holds unchecked bytes."""
    extract = load()
    if extract.sha256 != checked["sha256"]:
        raise ValueError(
            f"Landing file {extract.source_file} changed while this run ingested it (sha256 "
            f"{checked['sha256']} when checked, {extract.sha256} now); re-run to ingest it"
        )
    return _to_bronze(extract, batch_id, ingested_at, data_source)


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
    frame["_batch_id"] = batch_id
    frame["_ingested_at"] = ingested_at
    frame["_data_source"] = data_source
    frame["_parse_error"] = pd.Series(
        extract.row_errors or [None] * len(frame), index=frame.index, dtype="string"
    )  # why a row could not be split into columns (silver quarantines it): None for most
    return frame
