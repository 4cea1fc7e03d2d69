"""Tables that are replaced atomically from a reader's point of view.

Each save writes a complete new version folder, then flips a one-line ``_LATEST`` pointer
(:func:`readmit_kedro.io.atomic.atomic_write`). Readers follow the pointer, so while a run is
writing, or after it crashed, they keep reading the previous good table. The Spark and pandas
flavours share the layout, so a table written by Spark is read by pandas nodes through Kedro
transcoding (``name@spark``/``name@pandas``).

Incremental tables (a node returns a :class:`TableUpdate`) are partitioned by a key column and
updated partition by partition: a new version folder holds only the partitions the run rewrote,
and its ``_MANIFEST.json`` names, for every partition of the table, the folder that holds it (in
this version or, by reference, in an older one), the table's schema and the node's bookkeeping
(``state``: what it has already processed). Readers follow ``_LATEST`` to the manifest, so the flip
stays one atomic step. A table saved with ``fingerprint: true`` also records each partition's
content digest in the manifest (:func:`partition_fingerprint`), so a reader can tell which
partitions changed, and name the rows a training run used, without reading them. Cleanup keeps
the current and the previous version and every version their manifests refer to, so a reader
still on the previous table never loses a file.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import unquote

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
from kedro.io import AbstractDataset, DatasetError

from readmit_kedro.io.atomic import VERSION_NAME, AtomicStore, ConcurrentUpdateError

POINTER = "_LATEST"
MANIFEST = "_MANIFEST.json"


def partition_fingerprint(rows: pd.DataFrame) -> str:
    """sha256 of a partition's rows whatever their order or file layout: the sorted row hashes.

    Spark writes the same rows in a different order and different files from run to run; the
    digest changes only when a value, a row or a column does.
    """
    rows = rows[sorted(rows.columns)]
    hashes = np.sort(pd.util.hash_pandas_object(rows, index=False).to_numpy())
    digest = hashlib.sha256(",".join(f"{c}:{t}" for c, t in rows.dtypes.items()).encode())
    digest.update(hashes.tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class TableUpdate:
    """What an incremental node hands a published table: the rows of the partitions it rewrote.

    ``rows`` (a Spark DataFrame; a ``pyarrow.Table`` computed on the driver, for an update that
    carries partitions over from a previous version; or None when nothing is rewritten) carries
    the partition column ``key``; every partition present in ``rows`` replaces the table's
    partition of that key, and the partitions named in ``replaced`` are dropped unless ``rows``
    brings them back (a partition that became empty). With ``full`` the previous partitions are
    not carried over at all. ``state`` is the node's bookkeeping, stored in the manifest and
    handed back by the next :class:`TableSnapshot`.
    ``base`` is the snapshot the update was computed from: the update is published only if that
    version is still the table's current one (another run's update is never silently dropped).
    """

    key: str
    rows: Any = None
    replaced: tuple[str, ...] = ()
    state: dict[str, Any] = field(default_factory=dict)
    full: bool = False
    base: TableSnapshot | None = None


class TableSnapshot:
    """The published version of a table as a node sees it before updating it (read-only).

    ``partitioned`` is False when nothing was published yet or the version predates manifests; a
    node then rebuilds in full. ``read(keys)`` reads only the partitions named (all when None).
    """

    def __init__(
        self, table: SparkPublishedTable, version: str | None, manifest: dict[str, Any] | None
    ) -> None:
        self._table, self.version, self.manifest = table, version, manifest

    @property
    def partitioned(self) -> bool:
        return self.manifest is not None

    @property
    def state(self) -> dict[str, Any]:
        return dict((self.manifest or {}).get("state", {}))

    @property
    def partitions(self) -> dict[str, str]:
        """Partition key -> folder (relative to the table root) that holds it."""
        return dict((self.manifest or {}).get("partitions", {}))

    @property
    def fingerprints(self) -> dict[str, str | None]:
        """Partition key -> content digest (None for a partition saved without one)."""
        recorded = (self.manifest or {}).get("fingerprints", {})
        return {key: recorded.get(key) for key in self.partitions}

    def matching_rows(self, columns: list[str], any_of: dict[str, set]) -> list[dict[str, Any]]:
        """Rows (only ``columns``) whose value in some column of ``any_of`` is in its set.

        Read with Arrow on the driver, never by a Spark job: an incremental run looks up a few
        hundred keys, and a Spark scan of the whole table cost ~1.5-2 s of planning and tasks
        (real data, 2 cores) where Arrow reads the few narrow columns in milliseconds.
        """
        if self.manifest is None or not any(any_of.values()):
            return []
        import pyarrow.compute as pc

        files = self._table._folder_files(sorted(set(self.partitions.values())))
        wanted = [pc.field(c).isin(sorted(v)) for c, v in any_of.items() if v]
        condition = wanted[0]
        for other in wanted[1:]:
            condition = condition | other
        dataset = pads.dataset(files, filesystem=self._table._fs, format="parquet")
        return dataset.to_table(columns=columns, filter=condition).to_pylist()

    def row_count(self, keys) -> int:
        """Rows in the partitions ``keys``, from the Parquet footers (no data is read)."""
        return self._arrow_dataset(keys).count_rows()

    def read_pandas(self, keys, columns: list[str]) -> pd.DataFrame:
        """``columns`` of the partitions ``keys`` on the driver, read with Arrow (no Spark job)."""
        return _to_pandas(self._arrow_dataset(keys).to_table(columns=columns))

    def _arrow_dataset(self, keys) -> pads.Dataset:
        folders = self.partitions
        chosen = sorted({folders[k] for k in keys if k in folders})
        schema = arrow_schema(self.manifest["schema"])
        files = self._table._folder_files(chosen)
        return pads.dataset(files, schema=schema, filesystem=self._table._fs, format="parquet")

    def read(self, keys=None):
        """A Spark DataFrame of the partitions ``keys`` (all when None), in the table's schema."""
        if self.manifest is None:
            return self._table.load()
        folders = self.partitions
        chosen = sorted(folders) if keys is None else sorted(k for k in set(keys) if k in folders)
        return self._table.read_folders([folders[k] for k in chosen], self.manifest["schema"])


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

    def manifest(self) -> dict[str, Any] | None:
        """The current version's manifest; None if nothing is published or it has none (legacy)."""
        return self._current()[1]

    def _current(self) -> tuple[str | None, dict[str, Any] | None]:
        """The current version's name and manifest (None, None when nothing is published)."""
        if not self._exists():
            return None, None
        path = self.current_version_path()
        try:
            manifest = json.loads(self._fs.cat_file(posixpath.join(path, MANIFEST)))
        except FileNotFoundError:
            manifest = None
        return posixpath.basename(path), manifest

    def _current_version(self) -> str | None:
        return posixpath.basename(self.current_version_path()) if self._exists() else None

    def _folder_files(self, folders: list[str]) -> list[str]:
        files = []
        for folder in folders:
            for path in sorted(self._fs.find(posixpath.join(self._root, folder))):
                name = posixpath.basename(path)
                if name.endswith(".parquet") and not name.startswith(("_", ".")):
                    files.append(path)
        return files

    def _new_version_path(self) -> str:
        version = "v" + datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return posixpath.join(self._root, version)

    def _publish(self, version_path: str, previous: str | None) -> None:
        """Point readers at ``version_path`` if ``previous`` is still current (else drop it and
        raise :class:`ConcurrentUpdateError`); keep the previous version, drop everything older."""
        version = posixpath.basename(version_path)
        try:
            self._store.swap_pointer(self._pointer, previous, version)
        except ConcurrentUpdateError:
            self._fs.rm(version_path, recursive=True)
            raise
        live = {version, previous} - {None}
        for kept in list(live):  # partitions carried over by reference live in older versions
            live |= self._referenced_versions(kept)
        for path in self._fs.ls(self._root, detail=False, refresh=True):
            name = posixpath.basename(path.rstrip("/"))
            if name.startswith("v") and name < version and name not in live:
                self._fs.rm(path, recursive=True)  # superseded, or left by a crashed run

    def _referenced_versions(self, version: str) -> set[str]:
        try:
            manifest = json.loads(self._fs.cat_file(posixpath.join(self._root, version, MANIFEST)))
        except FileNotFoundError:
            return set()
        return {folder.split("/", 1)[0] for folder in manifest.get("partitions", {}).values()}


def driver_rows_frame(spark: Any, rows: list[dict[str, Any]] | pa.Table, schema: Any) -> Any:
    """Rows held on the driver (dicts, or an Arrow table with at least ``schema``'s columns) as
    a Spark DataFrame of ``schema`` (a StructType), handed to the JVM as Arrow. A Python list
    would become a Python RDD, and the first one of a run starts Python worker processes:
    ~1.2 s of a ~10 s incremental month on the real data (event log).
    """
    arrow = arrow_schema(schema.json())
    if isinstance(rows, pa.Table):
        table = rows.select(arrow.names).cast(arrow)
    else:
        table = pa.Table.from_pylist(rows, schema=arrow)
    return spark.createDataFrame(table, schema)


def arrow_schema(schema_json: str) -> pa.Schema:
    """A manifest's Spark schema as the Arrow schema of its Parquet files (Spark writes every
    column as nullable, whatever the DataFrame's schema says)."""
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StructType

    schema = to_arrow_schema(StructType.fromJson(json.loads(schema_json)))
    return pa.schema([f.with_nullable(True) for f in schema])


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    """Arrow to pandas as every reader of a published table sees it (dictionaries decoded)."""
    table = pa.table(
        {
            name: col.dictionary_decode() if pa.types.is_dictionary(col.type) else col
            for name, col in zip(table.column_names, table.columns, strict=True)
        }
    )
    return table.to_pandas(date_as_object=False)


class PandasPublishedTable(_PublishedTable):
    """pandas view of a published Parquet table (hive partitions become ordinary columns).

    ``load_args: {columns: [...]}`` reads only those columns: a check that needs a few columns of
    a large table never holds the rest in memory.
    """

    def __init__(self, *, load_args: dict[str, Any] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._columns = (load_args or {}).get("columns")

    def load(self) -> pd.DataFrame:
        path = self.current_version_path()
        manifest = self.manifest()
        if manifest is not None:
            files = self._folder_files(sorted(manifest["partitions"].values()))
            dataset = pads.dataset(files, filesystem=self._fs, format="parquet")
        else:
            dataset = pads.dataset(path, filesystem=self._fs, format="parquet", partitioning="hive")
        return _to_pandas(dataset.to_table(columns=self._columns))

    def save(self, data: pd.DataFrame) -> None:
        previous = self._current_version()
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
        self._publish(path, previous)


# A partitioned table read lazily: partition key -> a callable that loads that partition's rows.
Partitions = dict[str, Callable[[], pd.DataFrame]]


class PandasPublishedPartitions(PandasPublishedTable):
    """The table as ``{partition key: loader}``: nothing is listed or read until a node calls a loader.

    Kedro's lazy idiom (``PartitionedDataset``'s callables) for a table larger than a task's
    memory: the node reads one partition at a time. The partitions come in the order the whole
    table's :meth:`PandasPublishedTable.load` reads their rows, so concatenating every partition
    gives exactly the frame it returns. A version without a manifest is split by its hive folders.
    """

    def load(self) -> Partitions:
        manifest = self.manifest()
        if manifest is not None:
            folders = sorted(manifest["partitions"].items(), key=lambda item: item[1])
            return {key: partial(self._read, folder) for key, folder in folders}
        dataset = pads.dataset(
            self.current_version_path(), filesystem=self._fs, format="parquet", partitioning="hive"
        )
        expressions: dict[str, pads.Expression] = {}
        for fragment in dataset.get_fragments():
            keys = pads.get_partition_keys(fragment.partition_expression)
            name = "/".join(f"{k}={v}" for k, v in keys.items()) or "all"
            expressions.setdefault(name, fragment.partition_expression)
        return {
            name: partial(self._read_where, dataset, expression)
            for name, expression in expressions.items()
        }

    def _read(self, folder: str) -> pd.DataFrame:
        """One partition's rows; its files are listed only now (one listing per call on S3)."""
        dataset = pads.dataset(self._folder_files([folder]), filesystem=self._fs, format="parquet")
        return _to_pandas(dataset.to_table(columns=self._columns))

    def _read_where(self, dataset: pads.Dataset, expression: pads.Expression) -> pd.DataFrame:
        return _to_pandas(dataset.to_table(columns=self._columns, filter=expression))

    def save(self, data: Any) -> None:
        raise DatasetError(f"{self._filepath}: partitions are read-only; save the table itself")


class SparkPublishedTable(_PublishedTable):
    """Spark view of a published Parquet table; Spark writes, the pointer flips after its commit.

    With ``fingerprint`` an incremental save records each partition's content digest in the
    manifest: computed on the driver for the partitions the run rewrote (read back with Arrow),
    carried over for the others, and filled in once for partitions saved before without one.
    """

    def __init__(self, *, fingerprint: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._fingerprint = fingerprint

    def _spark_path(self, path: str) -> str:
        """``path`` as Spark must see it: ``s3a://`` for S3, ``file://`` for a local path.

        A bare path is resolved against the cluster's default filesystem (HDFS on EMR), not the
        driver's disk that fsspec lists and writes the pointer and manifest on.
        """
        full = self._store.url(path)
        if full.startswith("s3://"):
            return "s3a://" + full[len("s3://") :]
        return full if "://" in full else "file://" + full

    def load(self):
        snapshot = self.snapshot()
        if snapshot.manifest is not None:
            return snapshot.read()
        from pyspark.sql import SparkSession

        spark = SparkSession.builder.getOrCreate()
        return spark.read.parquet(self._spark_path(self.current_version_path()))

    def snapshot(self) -> TableSnapshot:
        return TableSnapshot(self, *self._current())

    def read_folders(self, folders: list[str], schema_json: str):
        """The partition folders ``folders`` (root-relative) as one DataFrame of ``schema_json``."""
        from pyspark.sql import SparkSession
        from pyspark.sql.types import StructType

        spark = SparkSession.builder.getOrCreate()
        schema = StructType.fromJson(json.loads(schema_json))
        if not folders:
            return driver_rows_frame(spark, [], schema)
        paths = [self._spark_path(posixpath.join(self._root, f)) for f in folders]
        return spark.read.schema(schema).parquet(*paths)

    def save(self, data) -> None:
        if isinstance(data, TableUpdate):
            self._save_update(data)
            return
        previous = self._current_version()
        path = self._new_version_path()
        # "error", not its alias "errorifexists", which the Spark Connect client refuses
        # ([UNSUPPORTED_OPERATION] errorifexists is not supported, pyspark 4.3.0).
        writer = data.write.mode("error")
        if self._partition_by:
            writer = writer.partitionBy(*self._partition_by)
        writer.parquet(self._spark_path(path))
        self._publish(path, previous)

    def _save_update(self, update: TableUpdate) -> None:
        """Write the rewritten partitions into a new version; refer to the others; then flip."""
        base = update.base or self.snapshot()
        previous = None if update.full else base.manifest
        if previous is not None and previous.get("partition_key") != update.key:
            previous = None  # another layout: nothing can be carried over
        partitions = dict(previous["partitions"]) if previous else {}
        for key in update.replaced:
            partitions.pop(key, None)
        path = self._new_version_path()
        if isinstance(update.rows, pa.Table):
            if previous is None:
                raise DatasetError(
                    f"{self._filepath}: driver rows only update a table; Spark writes a first "
                    "version or a full rebuild (it sets the schema)"
                )
            schema = previous["schema"]
            self._write_driver_rows(update.rows, update.key, schema, path)
            self._add_written(partitions, path, update.key)
        elif update.rows is not None:
            rows = update.rows.repartition(update.key) if update.full else update.rows
            rows.write.mode("error").partitionBy(update.key).parquet(
                self._spark_path(path)
            )  # a full rebuild: one file per partition, not one per task and partition
            schema = update.rows.drop(update.key).schema.json()
            self._add_written(partitions, path, update.key)
        elif previous is not None:
            schema = previous["schema"]
        else:
            raise DatasetError(f"{self._filepath}: a first version needs rows (a schema)")
        manifest = {
            "format": 2,
            "partition_key": update.key,
            "schema": schema,
            "partitions": dict(sorted(partitions.items())),
            "state": update.state,
        }
        if self._fingerprint:
            manifest["fingerprints"] = self._fingerprints(partitions, previous)
        self._store.write_bytes(
            posixpath.join(path, MANIFEST), json.dumps(manifest, sort_keys=True).encode()
        )
        self._publish(path, base.version)

    def _add_written(self, partitions: dict[str, str], path: str, key: str) -> None:
        """Point ``partitions`` at every ``key=value`` folder the new version ``path`` holds."""
        version, prefix = posixpath.basename(path), f"{key}="
        if not self._fs.exists(path):
            return  # no rows were written
        for folder in self._fs.ls(path, detail=False, refresh=True):
            name = posixpath.basename(folder.rstrip("/"))
            if name.startswith(prefix):
                partitions[unquote(name[len(prefix) :])] = f"{version}/{name}"

    def _write_driver_rows(self, rows: pa.Table, key: str, schema: str, path: str) -> None:
        """Driver rows as Spark would write them: one hive folder per key, files in the schema."""
        target = arrow_schema(schema)
        keys = rows.column(key).cast(pa.string())
        data = rows.select(target.names).cast(target).append_column(key, keys)
        if data.num_rows:
            pads.write_dataset(
                data,
                path,
                filesystem=self._fs,
                format="parquet",
                partitioning=pads.partitioning(pa.schema([(key, pa.string())]), flavor="hive"),
                basename_template="part-{i}.snappy.parquet",
                existing_data_behavior="error",
            )

    def _fingerprints(
        self, partitions: dict[str, str], previous: dict[str, Any] | None
    ) -> dict[str, str]:
        """Each partition's digest: the recorded one while the partition stays in its folder."""
        folders = (previous or {}).get("partitions", {})
        recorded = (previous or {}).get("fingerprints", {})
        return {
            key: recorded.get(key) if folders.get(key) == folder and recorded.get(key)
            else partition_fingerprint(self._read_pandas([folder]))
            for key, folder in sorted(partitions.items())
        }  # fmt: skip

    def _read_pandas(self, folders: list[str]) -> pd.DataFrame:
        files = self._folder_files(folders)
        return _to_pandas(pads.dataset(files, filesystem=self._fs, format="parquet").to_table())


class PublishedFingerprints(_PublishedTable):
    """The current version's partition digests, partition key -> sha256 (None where missing).

    Read-only and tiny (the manifest only): training and its trigger name the gold rows a run
    would use by these, instead of hashing the rows themselves.
    """

    def load(self) -> dict[str, str | None]:
        return TableSnapshot(self, *self._current()).fingerprints

    def save(self, data) -> None:
        raise DatasetError("Fingerprints are read-only: the table's save records them")


class SparkTableSnapshot(_PublishedTable):
    """Read-only view of a Spark published table's current version, for the node that updates it."""

    def load(self) -> TableSnapshot:
        table = SparkPublishedTable(filepath=self._filepath)
        table._store, table._fs, table._root = self._store, self._fs, self._root
        table._pointer = self._pointer
        return table.snapshot()

    def save(self, data) -> None:
        raise DatasetError("A snapshot is read-only: the node saves through the table itself")
