"""Tables that are replaced atomically from a reader's point of view.

Each save writes a complete new version folder, then flips a one-line ``_LATEST`` pointer
(:func:`readmit_kedro.io.atomic.atomic_write`). Readers follow the pointer, so while a run is
writing, or after it crashed, they keep reading the previous good table. The Spark and pandas
flavours share the layout, so a table written by Spark is read by pandas nodes through Kedro
transcoding (``name@spark``/``name@pandas``).
"""

from __future__ import annotations

import posixpath
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
from kedro.io import AbstractDataset, DatasetError

from readmit_kedro.io.atomic import VERSION_NAME, AtomicStore

POINTER = "_LATEST"


class _PublishedTable(AbstractDataset):
    def __init__(
        self,
        *,
        filepath: str,
        partition_by: list[str] | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._filepath = filepath.rstrip("/")
        self._partition_by = list(partition_by or [])
        self._store = AtomicStore(self._filepath, {**(credentials or {}), **(fs_args or {})})
        self._fs, self._root = self._store.fs, self._store.path()
        self._pointer = posixpath.join(self._root, POINTER)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "partition_by": self._partition_by}

    def _exists(self) -> bool:
        return self._fs.exists(self._pointer)

    def current_version_path(self) -> str:
        """Root-relative path of the version readers see now; raises if nothing was published."""
        if not self._exists():
            raise DatasetError(
                f"{self._filepath}: nothing published yet (no {POINTER} pointer). "
                "Run the pipeline that produces it first."
            )
        version = self._store.read_pointer(self._pointer, VERSION_NAME)
        return posixpath.join(self._root, version)

    def _new_version_path(self) -> str:
        version = "v" + datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return posixpath.join(self._root, version)

    def _publish(self, version_path: str) -> None:
        """Point readers at ``version_path``; keep the previous version, drop everything older."""
        previous = self._fs.cat_file(self._pointer).decode().strip() if self._exists() else None
        version = posixpath.basename(version_path)
        self._store.write_bytes(self._pointer, version.encode())
        for path in self._fs.ls(self._root, detail=False):
            name = posixpath.basename(path.rstrip("/"))
            if name.startswith("v") and name < version and name != previous:
                self._fs.rm(path, recursive=True)  # superseded, or left by a crashed run


class PandasPublishedTable(_PublishedTable):
    """pandas view of a published Parquet table (hive partitions become ordinary columns)."""

    def load(self) -> pd.DataFrame:
        path = self.current_version_path()
        dataset = pads.dataset(path, filesystem=self._fs, format="parquet", partitioning="hive")
        table = dataset.to_table()
        table = pa.table(
            {
                name: col.dictionary_decode() if pa.types.is_dictionary(col.type) else col
                for name, col in zip(table.column_names, table.columns, strict=True)
            }
        )
        return table.to_pandas(date_as_object=False)

    def save(self, data: pd.DataFrame) -> None:
        path = self._new_version_path()
        pads.write_dataset(
            pa.Table.from_pandas(data, preserve_index=False),
            path,
            filesystem=self._fs,
            format="parquet",
            partitioning=self._partition_by or None,
            partitioning_flavor="hive" if self._partition_by else None,
            existing_data_behavior="error",
        )
        self._publish(path)


class SparkPublishedTable(_PublishedTable):
    """Spark view of a published Parquet table; Spark writes, the pointer flips after its commit."""

    def _spark_path(self, path: str) -> str:
        full = self._store.url(path)
        return "s3a://" + full[len("s3://") :] if full.startswith("s3://") else full

    def load(self):
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()
        return spark.read.parquet(self._spark_path(self.current_version_path()))

    def save(self, data) -> None:
        path = self._new_version_path()
        writer = data.write.mode("errorifexists")
        if self._partition_by:
            writer = writer.partitionBy(*self._partition_by)
        writer.parquet(self._spark_path(path))
        self._publish(path)
