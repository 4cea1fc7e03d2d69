"""The base of every dataset that owns files under one fsspec root.

``credentials`` and ``fs_args`` are merged into fsspec's storage options (Kedro's convention);
writes go through :class:`~readmit_kedro.io.atomic.AtomicStore`, so they are atomic for readers
on local paths and ``s3://`` alike.
"""

from __future__ import annotations

from typing import Any

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
