"""Replay the raw file as the hospital's monthly extracts, so pipelines run on a real timeline.

The UCI data has no dates. Encounter ids grow with time, so each encounter gets a stand-in
``admission_date`` from its rank: the i-th of N rows in stable ``encounter_id`` order is admitted on
``1999-01-01 + floor(i * 3653 / N)`` days (3653 days = 1999-01-01..2008-12-31). Dates spread evenly
over the ten years and keep the real order.

The landing root then holds one ``diabetic_data_YYYY-MM.csv.gz`` per month (header
``LANDING_COLUMNS``: the 50 raw columns verbatim as text, then ``admission_date`` as YYYY-MM-DD;
rows in ``encounter_id`` order; LF line endings) and ``_SOURCE.json``, a copy of the raw file's
sidecar so downstream can record where the data came from. Landing ``until`` a month replays
history up to it; months already landed are never rewritten, so replaying month by month is cheap
and a re-run is a no-op. A month without encounters (possible only for files of a few hundred
rows) gets no file. Memory stays bounded: a few int64 per row plus the lines of the months
still being collected (about one month at a time, as the raw file is nearly sorted).
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from readmit_kedro.io.atomic import atomic_write
from readmit_kedro.landing import DEFAULT_LANDING_ROOT, DEFAULT_RAW_DIR, RAW_FILENAME
from readmit_kedro.landing.acquire import read_sidecar, sidecar_path
from readmit_kedro.schema import LANDING_COLUMNS, RAW_COLUMNS

__all__ = [
    "DEFAULT_LANDING_ROOT",
    "FIRST_MONTH",
    "LAST_MONTH",
    "SOURCE_FILENAME",
    "LandingError",
    "LandingResult",
    "admission_dates",
    "extract_name",
    "land",
]

log = logging.getLogger(__name__)

FIRST_DAY = np.datetime64("1999-01-01", "D")
SPAN_DAYS = 3653  # 1999-01-01 .. 2008-12-31 inclusive
FIRST_MONTH, LAST_MONTH = "1999-01", "2008-12"
N_MONTHS = 120
SOURCE_FILENAME = "_SOURCE.json"

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class LandingError(Exception):
    """Landing cannot proceed (a user-facing, one-line reason)."""


@dataclass(frozen=True)
class LandingResult:
    """What one ``land`` call did: months written now, months found already landed, and months
    without any encounter (no file: bronze treats a header-only extract as a bad delivery)."""

    landing_root: Path
    written: tuple[str, ...]
    skipped: tuple[str, ...]
    rows_written: int
    source: dict[str, Any]
    empty: tuple[str, ...] = ()


def extract_name(month: str) -> str:
    """The landing file name of a month, e.g. ``diabetic_data_1999-01.csv.gz``."""
    return f"diabetic_data_{month}.csv.gz"


def admission_dates(encounter_ids: np.ndarray) -> np.ndarray:
    """Stand-in admission dates (datetime64[D]) for rows given in any order, by encounter_id rank."""
    ids = np.asarray(encounter_ids)
    n = len(ids)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(ids, kind="stable")] = np.arange(n, dtype=np.int64)
    return FIRST_DAY + (rank * SPAN_DAYS // max(n, 1)).astype("timedelta64[D]")


def land(
    raw_path: str | os.PathLike[str] = DEFAULT_RAW_DIR / RAW_FILENAME,
    landing_root: str | os.PathLike[str] = DEFAULT_LANDING_ROOT,
    until: str | None = None,
) -> LandingResult:
    """Write the monthly extracts from 1999-01 up to ``until`` (default: all) that are missing.

    Two streaming passes over the raw file: the encounter ids (to rank rows), then the lines,
    collected per month and written as soon as a month is complete. Lines are copied as bytes,
    so every value lands exactly as the raw file has it.
    """
    raw = Path(raw_path)
    root = Path(landing_root)
    last = _month_index(until) if until is not None else N_MONTHS - 1
    source = _read_raw_source(raw)
    _check_header(raw)
    _publish_source(root, source)

    months = [_month_label(m) for m in range(min(last, N_MONTHS - 1) + 1)]
    skipped = tuple(m for m in months if (root / extract_name(m)).exists())
    todo = [i for i, m in enumerate(months) if m not in skipped]
    if not todo:
        log.info("Landing %s: every month up to %s is already landed", root, months[-1])
        return LandingResult(root, (), skipped, 0, source)

    ids = _encounter_ids(raw)
    n = len(ids)
    if n != source.get("rows", n):
        raise LandingError(
            f"{raw}: {n} rows, but {sidecar_path(raw).name} says {source['rows']}; re-acquire it"
        )
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(ids, kind="stable")] = np.arange(n, dtype=np.int64)
    del ids
    month = _months_since_1999(FIRST_DAY + (rank * SPAN_DAYS // n).astype("timedelta64[D]"))
    expected = np.bincount(month, minlength=N_MONTHS)

    empty = tuple(months[m] for m in todo if expected[m] == 0)  # only with a few hundred rows
    buffers: dict[int, list[tuple[int, bytes]]] = {m: [] for m in todo if expected[m] > 0}
    written: list[str] = []
    rows_written = 0
    start = 0
    with gzip.open(raw, "rb") as handle:
        handle.readline()
        for lines in _line_blocks(handle) if buffers else ():
            block_month = month[start : start + len(lines)]
            for m in np.unique(block_month).tolist():
                if m not in buffers:
                    continue
                rows = np.flatnonzero(block_month == m)
                buffer = buffers[m]
                buffer.extend(
                    zip(rank[start + rows].tolist(), [lines[j] for j in rows], strict=True)
                )
                if len(buffer) == expected[m]:
                    _write_extract(root / extract_name(months[m]), buffers.pop(m), n)
                    written.append(months[m])
                    rows_written += len(buffer)
            start += len(lines)
            if not buffers:  # every wanted month is out: the rest of the file is not needed
                break
    if buffers:
        raise LandingError(f"{raw}: the file changed while it was being landed; run it again")
    written.sort()
    log.info(
        "Landing %s: wrote %d month(s) (%s rows), %d already landed, %d without encounters",
        root,
        len(written),
        f"{rows_written:,}",
        len(skipped),
        len(empty),
    )
    return LandingResult(root, tuple(written), skipped, int(rows_written), source, empty)


# --------------------------------------------------------------------------------------------------


def _month_index(month: str) -> int:
    match = _MONTH.match(month)
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise LandingError(f"until must look like YYYY-MM (e.g. 2000-03), got {month!r}")
    index = (int(match.group(1)) - 1999) * 12 + int(match.group(2)) - 1
    if index < 0:
        raise LandingError(f"until {month} is before the first month of data ({FIRST_MONTH})")
    return index


def _month_label(index: int) -> str:
    return f"{1999 + index // 12}-{index % 12 + 1:02d}"


def _months_since_1999(dates: np.ndarray) -> np.ndarray:
    months = dates.astype("datetime64[M]") - np.datetime64(FIRST_MONTH, "M")
    return months.astype(np.int64)


def _read_raw_source(raw: Path) -> dict[str, Any]:
    if not raw.is_file():
        raise LandingError(f"{raw}: no raw file; run `readmit data acquire` first")
    source = read_sidecar(raw)
    if source is None or "sha256_uncompressed" not in source:
        raise LandingError(
            f"{sidecar_path(raw)}: missing or unreadable; run `readmit data acquire` first"
        )
    return source


def _check_header(raw: Path) -> None:
    try:
        with gzip.open(raw, "rt", encoding="utf-8", newline="") as handle:
            header = handle.readline().rstrip("\r\n").split(",")
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise LandingError(f"{raw}: cannot read it ({exc})") from exc
    if tuple(header) != RAW_COLUMNS:
        missing = [c for c in RAW_COLUMNS if c not in header]
        extra = [c for c in header if c not in RAW_COLUMNS]
        raise LandingError(
            f"{raw}: header is not the 50 raw columns in order "
            f"(missing {missing}, unexpected {extra})"
        )


def _publish_source(root: Path, source: dict[str, Any]) -> None:
    """Write ``_SOURCE.json`` once; refuse to mix extracts of two different raw files."""
    path = root / SOURCE_FILENAME
    if path.exists():
        try:
            landed = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise LandingError(f"{path}: unreadable ({exc})") from exc
        if landed.get("sha256_uncompressed") != source["sha256_uncompressed"]:
            raise LandingError(
                f"{root} holds extracts of another raw file "
                f"({landed.get('data_source')}, sha256 {landed.get('sha256_uncompressed')}; "
                f"now {source.get('data_source')}, sha256 {source['sha256_uncompressed']}): "
                "land into an empty folder, or empty this one first"
            )
        return
    with atomic_write(path) as handle:
        handle.write((json.dumps(source, indent=2) + "\n").encode())


def _line_blocks(handle: IO[bytes], size: int = 1 << 23) -> Iterator[list[bytes]]:
    """Data lines without line endings, a few MB at a time; blank lines are skipped (as CSV
    readers do). Splitting big buffers in C is several times faster than reading line by line."""
    rest = b""
    while chunk := handle.read(size):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield [line for line in (raw.rstrip(b"\r") for raw in lines) if line]
    if rest.rstrip(b"\r"):
        yield [rest.rstrip(b"\r")]


def _describe_bad_row(line: bytes, first: bytes) -> str:
    """What is wrong with a data line, in words that carry none of its values.

    The row is patient data (its first fields are encounter_id and patient_nbr): an error
    message ends up in logs, Airflow task logs and alerts, so it names the row number and the
    shape of the problem, never the bytes themselves.
    """
    if b'"' in line:
        position = line.index(b'"') + 1
        return f"found a quoted field (double quote at byte {position} of the row)"
    if not first:
        return "found an empty first field"
    return f"found a first field of {len(first)} bytes that is not a non-negative integer"


def _encounter_ids(raw: Path) -> np.ndarray:
    """The first field of every data line, as int64 (the UCI layout has no quoted fields)."""
    parts: list[np.ndarray] = []
    with gzip.open(raw, "rb") as handle:
        handle.readline()
        for lines in _line_blocks(handle):
            firsts = [line.split(b",", 1)[0] for line in lines]
            if not all(f.isdigit() for f in firsts) or any(b'"' in line for line in lines):
                bad = next(
                    i for i, line in enumerate(lines) if b'"' in line or not firsts[i].isdigit()
                )
                raise LandingError(
                    f"{raw}, data row {sum(map(len, parts)) + bad + 1}: expected an unquoted "
                    f"integer encounter_id first, {_describe_bad_row(lines[bad], firsts[bad])}"
                )
            parts.append(np.array(firsts, dtype=np.int64))
    if not parts:
        raise LandingError(f"{raw}: no data rows")
    return np.concatenate(parts)


def _write_extract(path: Path, rows: list[tuple[int, bytes]], n: int) -> None:
    """One month: the header, then its lines in encounter_id order, each with its date appended."""
    rows.sort(key=lambda row: row[0])
    ranks = np.array([rank for rank, _ in rows], dtype=np.int64)
    dates = np.datetime_as_string(FIRST_DAY + (ranks * SPAN_DAYS // n).astype("timedelta64[D]"))
    body = b"".join(
        line + b"," + date.encode() + b"\n" for (_, line), date in zip(rows, dates, strict=True)
    )
    with (
        atomic_write(path) as handle,
        # Level 1: extracts are written in bulk and read once; 3x faster than 6, ~35% larger.
        gzip.GzipFile(filename="", mode="wb", fileobj=handle, compresslevel=1, mtime=0) as gz,
    ):
        gz.write(_LANDING_HEADER + body)


_LANDING_HEADER = (",".join(LANDING_COLUMNS) + "\n").encode()
