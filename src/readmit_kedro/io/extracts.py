"""Datasets for the hospital's monthly extracts and the bronze copies made of them."""

from __future__ import annotations

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
    """One extract as received: its name, the sha256 of its bytes, and its rows as raw strings."""

    source_file: str
    sha256: str
    frame: pd.DataFrame


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
            text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
            frame = pd.read_csv(io.BytesIO(text), dtype=str, keep_default_na=False, na_filter=False)
        except (EOFError, OSError, zlib.error, pd.errors.ParserError) as exc:
            raise DatasetError(f"{self._filepath}: cannot read the extract ({exc})") from exc
        except pd.errors.EmptyDataError as exc:
            raise DatasetError(f"{self._filepath}: the extract has no header row") from exc
        name = posixpath.basename(get_protocol_and_path(self._filepath)[1])
        return LandingExtract(name, hashlib.sha256(raw).hexdigest(), frame)

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
