"""The base of every dataset that owns files under one fsspec root.

``credentials`` and ``fs_args`` are merged into fsspec's storage options (Kedro's convention);
writes go through :class:`~readmit_kedro.io.atomic.AtomicStore`, so they are atomic for readers
on local paths and ``s3://`` alike.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset

from readmit_kedro.io.atomic import AtomicStore


class StoreDataset(AbstractDataset):
    """A dataset whose files live under ``path`` (a local folder or file, or an fsspec URL)."""

    def __init__(
        self,
        *,
        path: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._store = AtomicStore(path, {**(credentials or {}), **(fs_args or {})})
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": self._store.root}


class ParquetFileDataset(StoreDataset):
    """One table in one Parquet file (``path``), replaced in one step: a reader sees the previous
    table or the new one, never a part. A file not written yet loads as :meth:`empty`: a state
    (nothing written so far), not an error."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._path = self._store.path()

    def load(self) -> pd.DataFrame:
        try:
            return self._frame(self._store.read_bytes(self._path))
        except FileNotFoundError:
            return self._frame(None)

    def save(self, data: pd.DataFrame) -> None:
        self._store.write_bytes(self._path, parquet_bytes(data))

    def empty(self) -> pd.DataFrame:
        """What a file not written yet loads as."""
        return pd.DataFrame()

    def _frame(self, content: bytes | None) -> pd.DataFrame:
        return self.empty() if content is None else pd.read_parquet(io.BytesIO(content))

    def _exists(self) -> bool:
        return self._store.exists(self._path)


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
