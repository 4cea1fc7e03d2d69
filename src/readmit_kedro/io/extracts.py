"""Datasets for the hospital's monthly extracts and the bronze copies made of them."""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
import io
import posixpath
import zlib
from dataclasses import dataclass
from typing import Any

import fsspec
import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import get_protocol_and_path

from readmit_kedro.io.atomic import atomic_write


@dataclass(frozen=True)
class LandingExtract:
    """One extract as received: its name, the sha256 of its bytes, and its rows as raw strings.

    ``row_errors`` holds, per row, why it could not be split into the header's columns (its line
    and field count), or None; such a row carries no values, and silver quarantines it on its own.
    """

    source_file: str
    sha256: str
    frame: pd.DataFrame
    row_errors: tuple[str | None, ...] | None = None


_BYTE_ORDER_MARKS = (  # longest first: the UTF-32 LE mark starts with UTF-16 LE's
    (codecs.BOM_UTF32_LE, "UTF-32 (little-endian byte-order mark)"),
    (codecs.BOM_UTF32_BE, "UTF-32 (big-endian byte-order mark)"),
    (codecs.BOM_UTF16_LE, "UTF-16 (little-endian byte-order mark)"),
    (codecs.BOM_UTF16_BE, "UTF-16 (big-endian byte-order mark)"),
)


def decode_extract(raw: bytes, filepath: str) -> str:
    """The extract's text: UTF-8 (a UTF-8 byte-order mark is allowed), else a refusal naming what
    the bytes are, since a file in another encoding would be parsed into garbage or stop the run
    with a bare UnicodeDecodeError."""
    for mark, found in _BYTE_ORDER_MARKS:
        if raw.startswith(mark):
            raise DatasetError(f"{filepath}: the extract is {found}, not UTF-8; re-export as UTF-8")
    if b"\x00" in raw[:65536]:
        raise DatasetError(
            f"{filepath}: the extract holds NUL bytes (binary data, or UTF-16 without a "
            "byte-order mark), not UTF-8 text"
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DatasetError(
            f"{filepath}: the extract is not UTF-8 text (invalid byte 0x{raw[exc.start]:02x} at "
            f"offset {exc.start}; Latin-1/Windows-1252 exports look like this); re-export as UTF-8"
        ) from None


def parse_extract(text: str, filepath: str) -> tuple[pd.DataFrame, tuple[str | None, ...]]:
    """Rows as raw strings under the header's columns, and per row why it could not be split.

    A row with more or fewer fields than the header is kept as an empty row with its reason
    (line, field count) instead of being padded, truncated or shifting the other rows' columns.
    """
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        raise DatasetError(f"{filepath}: the extract has no header row")
    rows: list[list[str]] = []
    errors: list[str | None] = []
    width = len(header)
    try:
        for fields in reader:
            if not fields:
                continue  # a blank line, e.g. the trailing newline
            if len(fields) == width:
                rows.append(fields)
                errors.append(None)
            else:
                rows.append([""] * width)
                errors.append(
                    f"line {reader.line_num}: {len(fields)} fields, the header has {width}"
                )
    except csv.Error as exc:
        raise DatasetError(
            f"{filepath}: cannot read the extract (line {reader.line_num}: {exc})"
        ) from None
    return pd.DataFrame(rows, columns=header, dtype=str), tuple(errors)


class LandingExtractDataset(AbstractDataset):
    """A landing CSV (optionally gzip) read strictly: every value as text, exactly as sent.

    Unreadable files (empty, truncated gzip, not CSV) fail here with the file's path in the message,
    before any node runs, so a bad delivery can never reach bronze.
    """

    def __init__(self, *, filepath: str, credentials: dict[str, Any] | None = None) -> None:
        self._filepath = filepath
        self._fs, self._path = fsspec.core.url_to_fs(filepath, **(credentials or {}))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}

    def _exists(self) -> bool:
        return self._fs.exists(self._path)

    def load(self) -> LandingExtract:
        raw = self._fs.cat_file(self._path)
        if not raw:
            raise DatasetError(f"{self._filepath}: the extract is empty (0 bytes)")
        try:
            data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        except (EOFError, OSError, zlib.error) as exc:
            raise DatasetError(f"{self._filepath}: cannot read the extract ({exc})") from exc
        frame, errors = parse_extract(decode_extract(data, self._filepath), self._filepath)
        name = posixpath.basename(get_protocol_and_path(self._filepath)[1])
        return LandingExtract(name, hashlib.sha256(raw).hexdigest(), frame, errors)

    def save(self, data: LandingExtract) -> None:
        raise DatasetError("Landing extracts are delivered by the hospital, never written here")


class BronzeFileDataset(AbstractDataset):
    """One bronze extract as a Parquet file, replaced in one step.

    A corrected extract overwrites bronze's copy of the same name: written through
    :func:`~readmit_kedro.io.atomic.atomic_write`, a crash mid-write leaves the previous copy
    (and its sha256, so the next run retries the correction) instead of a truncated file.
    """

    def __init__(self, *, filepath: str, credentials: dict[str, Any] | None = None) -> None:
        self._filepath = filepath
        self._fs, self._path = fsspec.core.url_to_fs(filepath, **(credentials or {}))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}

    def _exists(self) -> bool:
        return self._fs.exists(self._path)

    def load(self) -> pd.DataFrame:
        with self._fs.open(self._path, "rb") as handle:
            return pd.read_parquet(handle)

    def save(self, data: pd.DataFrame) -> None:
        payload = io.BytesIO()
        data.to_parquet(payload, index=False)
        with atomic_write(self._path, fs=self._fs) as handle:
            handle.write(payload.getvalue())


class PartitionInventoryDataset(AbstractDataset):
    """The ids of the partitions already in a folder, so a node can skip work already done."""

    def __init__(
        self,
        *,
        path: str,
        filename_suffix: str = "",
        credentials: dict[str, Any] | None = None,
    ) -> None:
        self._path_url = path
        self._suffix = filename_suffix
        self._fs, self._path = fsspec.core.url_to_fs(path, **(credentials or {}))

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path_url, "filename_suffix": self._suffix}

    def load(self) -> list[str]:
        if not self._fs.exists(self._path):
            return []
        names = (posixpath.basename(p) for p in self._fs.ls(self._path, detail=False))
        return sorted(n[: len(n) - len(self._suffix)] for n in names if n.endswith(self._suffix))

    def save(self, data: list[str]) -> None:
        raise DatasetError("An inventory is read-only: it lists what another dataset wrote")


class ContentHashesDataset(AbstractDataset):
    """The sha256 of every file of a folder (by partition id), read as bytes and never parsed.

    Bronze compares them with what it holds, so an extract is re-ingested exactly when its content
    changed (a correction), and only the new or changed ones are parsed.
    """

    def __init__(
        self, *, path: str, filename_suffix: str = "", credentials: dict[str, Any] | None = None
    ) -> None:
        self._path_url = path
        self._suffix = filename_suffix
        self._fs, self._path = fsspec.core.url_to_fs(path, **(credentials or {}))

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path_url, "filename_suffix": self._suffix}

    def load(self) -> dict[str, str]:
        if not self._fs.exists(self._path):
            return {}
        hashes = {}
        for path in sorted(self._fs.ls(self._path, detail=False, refresh=True)):
            name = posixpath.basename(path)
            if name.endswith(self._suffix) and not name.startswith("."):
                hashes[name[: len(name) - len(self._suffix)]] = hashlib.sha256(
                    self._fs.cat_file(path)
                ).hexdigest()
        return hashes

    def save(self, data: dict[str, str]) -> None:
        raise DatasetError("Content hashes are read-only: they describe files another party wrote")


class BronzeInventoryDataset(PartitionInventoryDataset):
    """Bronze's extracts with the sha256 of the landing file each was copied from.

    Read from the ``_source_sha256`` column of each bronze file (one small dictionary-encoded
    column), so the inventory can never disagree with what bronze holds.
    """

    def load(self) -> dict[str, dict[str, str]]:  # type: ignore[override]
        """Partition id -> ``{"sha256": ..., "source_file": ...}`` of the extract bronze holds."""
        import pyarrow.parquet as pq

        inventory = {}
        for partition in super().load():
            path = posixpath.join(self._path, partition + self._suffix)
            with self._fs.open(path, "rb") as handle:
                table = pq.read_table(handle, columns=["_source_sha256", "_source_file"])
            if table.num_rows:
                inventory[partition] = {
                    "sha256": str(table.column(0)[0]),
                    "source_file": str(table.column(1)[0]),
                }
        return inventory


class IdMappingDataset(AbstractDataset):
    """The UCI ``IDs_mapping.csv``: three lookup blocks in one file, as one long table.

    Returns columns ``id_column`` (e.g. ``admission_type_id``), ``id`` (int) and ``description``.
    """

    def __init__(self, *, filepath: str) -> None:
        self._filepath = filepath

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}

    def load(self) -> pd.DataFrame:
        from importlib.resources import files

        path = self._filepath
        if path.startswith("package://"):
            package, _, resource = path[len("package://") :].partition("/")
            text = files(package).joinpath(resource).read_text(encoding="utf-8")
        else:
            with fsspec.open(path, "rt", encoding="utf-8") as handle:
                text = handle.read()
        rows, id_column = [], None
        for line in text.splitlines():
            first, _, description = line.strip().partition(",")
            if not first:
                id_column = None  # a lone "," separates the blocks
            elif id_column is None:
                id_column = first
            else:
                rows.append((id_column, int(first), description.strip().strip('"')))
        return pd.DataFrame(rows, columns=["id_column", "id", "description"])

    def save(self, data: pd.DataFrame) -> None:
        raise DatasetError("The ID mapping ships with the project and is read-only")
