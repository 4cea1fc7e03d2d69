"""Kedro datasets over the model registry and the preprocessed training snapshots.

They keep nodes pure: a training node returns a value, and saving it is what registers a model
version, promotes a champion or publishes a snapshot; a scoring node receives the serving model
already loaded and hash-checked. All three are atomic for readers (files
first, pointer last) and work on local paths and ``s3://`` alike (``credentials``/``fs_args`` are
passed to fsspec). Nothing is unpickled unless the record naming its sha256 carries a signature
that verifies with ``signing`` (the ``model_signing`` block of globals; see
:mod:`readmit_kedro.io.signing`).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import posixpath
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from kedro.io import AbstractDataset, DatasetError

from readmit_kedro.io.atomic import (
    VERSION_NAME,
    AtomicStore,
    UnsafeNameError,
    atomic_write,
    check_name,
    copy_hashing,
)
from readmit_kedro.io.base import StoreDataset
from readmit_kedro.io.registry import (
    ALGORITHM_NAME,
    LoadedModel,
    ModelIntegrityError,
    ModelRegistry,
    RegistryError,
    utc_timestamp,
)
from readmit_kedro.io.signing import SignatureError, SigningKey, signing_key
from readmit_kedro.schema import TARGET

logger = logging.getLogger(__name__)

SNAPSHOT_PURPOSE = "training snapshot"
PICKLE_PURPOSE = "pickle file"


class ModelNotFoundError(RegistryError):
    """The registry holds no model to score with (no champion, or nothing was trained yet)."""


class _SignedStoreDataset(StoreDataset):
    """A store dataset whose records are signed with ``signing`` (a ``model_signing`` block)."""

    def __init__(self, *, signing: SigningKey | dict[str, Any] | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self._signing = signing_key(signing)


class _RegistryDataset(_SignedStoreDataset):
    """A dataset over a registry root (``path``)."""

    @property
    def _registry(self) -> ModelRegistry:
        return ModelRegistry(self._store, signing=self._signing)


class RegisteredModelDataset(_RegistryDataset):
    """One algorithm's versions in the registry (factory ``"{algorithm}.registered_model"``).

    ``save({"model": ..., "metrics": {...}, "metadata": {...}})`` registers a new version;
    ``load()`` returns the index record of the algorithm's latest version.
    """

    def __init__(self, *, algorithm: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._algorithm = algorithm

    def load(self) -> dict[str, Any]:
        return self._registry.record(self._algorithm)

    def save(self, data: dict[str, Any]) -> None:
        self._registry.register(
            self._algorithm, data["model"], metrics=data["metrics"], metadata=data["metadata"]
        )

    def _exists(self) -> bool:
        return bool(self._registry.list_versions(self._algorithm))

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "algorithm": self._algorithm}


class ChampionRecordDataset(_RegistryDataset):
    """Read-only: the champion's verified entry (``metadata/latest.json``), None before the first
    promotion; no bundle is loaded, so the scoring service can poll it to notice a promotion."""

    def load(self) -> dict[str, Any] | None:
        return self._registry.champion()

    def save(self, data: Any) -> None:
        raise DatasetError(f"{self._store.root}: the champion is promoted by training, not here")


class ChampionDataset(_RegistryDataset):
    """The registry's champion.

    ``load()`` returns :class:`~readmit_kedro.io.registry.LoadedModel` (record + verified bundle),
    or ``None`` before the first promotion. ``save({"algorithm", "version", "reason", "replaces"})``
    promotes that version, and does nothing if it already is the champion, so keeping it is a
    no-op. ``replaces`` is the ``history_id`` of the champion the decision was made against (None:
    none): if another one is champion by now (a manual promotion or rollback while training ran),
    the save is refused rather than undo that change.
    ``unverified_champion: replace`` (training's entries) treats an unsigned or unverifiable
    champion as none, logged, so the run promotes a signed model instead of stopping for good;
    the default ``refuse`` raises.
    """

    def __init__(self, *, unverified_champion: str = "refuse", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if unverified_champion not in ("refuse", "replace"):
            raise DatasetError(
                f"unverified_champion must be 'refuse' or 'replace', not {unverified_champion!r}"
            )
        self._replace = unverified_champion == "replace"

    def load(self) -> LoadedModel | None:
        return self._registry.load_champion(replace_unverified=self._replace)

    def save(self, data: dict[str, Any]) -> None:
        current = self._registry.champion(replace_unverified=self._replace)
        if current and (current["algorithm"], current["version"]) == (
            data["algorithm"],
            data["version"],
        ):
            return
        self._registry.promote(
            data["algorithm"],
            data["version"],
            data["reason"],
            replace_unverified=self._replace,
            over=data["replaces"],
        )

    def _exists(self) -> bool:
        return self._registry.champion(replace_unverified=self._replace) is not None


class ChampionProvenanceDataset(ChampionDataset):
    """Read-only: :meth:`~readmit_kedro.io.registry.ModelRegistry.champion_record`, the champion
    entry with the years it was trained on (None before the first promotion), without its bundle."""

    def load(self) -> dict[str, Any] | None:
        return self._registry.champion_record(replace_unverified=self._replace)

    def save(self, data: Any) -> None:
        raise DatasetError(f"{self._store.root}: read-only; champion_decision promotes")


class ServingModelDataset(_RegistryDataset):
    """Read-only: the model a scoring run uses, loaded and hash-checked before unpickling.

    The champion, unless ``model_algorithm`` and ``model_version`` pin a registered version (the catalog
    takes them from ``--params inference_config.model_algorithm=...,inference_config.model_version=...``).
    ``load()`` returns a :class:`~readmit_kedro.io.registry.LoadedModel` whose record has
    ``selected_by`` (``champion`` or ``pinned``). Both pins come from the trigger, so they are
    checked as names: the algorithm must be one of ``algorithms`` (globals ``model_algorithms``),
    the version must look like one this project writes.
    """

    def __init__(
        self,
        *,
        model_algorithm: str | None = None,
        model_version: str | None = None,
        algorithms: list[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)  # ("version" is a reserved dataset argument in Kedro)
        try:  # a run-time parameter: never a path (another bucket, "..")
            if model_algorithm is not None:
                check_name(model_algorithm, ALGORITHM_NAME, "inference_config.model_algorithm")
            if model_version is not None:
                check_name(model_version, VERSION_NAME, "inference_config.model_version")
        except UnsafeNameError as error:
            raise DatasetError(str(error)) from None
        if model_algorithm is not None and model_algorithm not in (algorithms or [model_algorithm]):
            raise DatasetError(
                f"inference_config.model_algorithm {model_algorithm!r} is not a configured "
                f"algorithm (globals model_algorithms: {list(algorithms or [])})"
            )
        if (model_algorithm is None) != (model_version is None):
            raise DatasetError(
                "set both inference_config.model_algorithm and inference_config.model_version to "
                "pin a version, or neither to use the champion "
                f"(got {model_algorithm!r}, {model_version!r})"
            )
        self._pin = (model_algorithm, model_version) if model_algorithm is not None else None

    def load(self) -> LoadedModel:
        if self._pin is not None:
            algorithm, version = self._pin
            record = self._registry.record(algorithm, version)
            return LoadedModel(
                {**record, "selected_by": "pinned"}, self._registry.load(algorithm, version)
            )
        champion = self._registry.load_champion()
        if champion is None:
            raise ModelNotFoundError(
                f"no champion model in the registry {self._store.root} (no metadata/latest.json): "
                "run the training pipeline, which promotes one, or pin a registered version with "
                "--params inference_config.model_algorithm=...,inference_config.model_version=..."
            )
        return LoadedModel({**champion.record, "selected_by": "champion"}, champion.model)

    def save(self, data: Any) -> None:
        raise DatasetError(f"{self._store.root}: scoring reads the registry, never writes it")

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "pin": self._pin}


class LatestVersionsDataset(_RegistryDataset):
    """Read-only: the index record of every algorithm's latest version (what the last run made)."""

    def load(self) -> dict[str, dict[str, Any]]:
        """Records that verify; an unverifiable one is left out (logged): it only means the
        repeat-run check cannot skip that algorithm, never that anything unverified is used."""
        records = {}
        for name in self._registry.algorithms():
            try:
                records[name] = self._registry.record(name)
            except SignatureError as error:
                logger.error("%s; %s counts as not trained yet", error, name)
        return records

    def save(self, data: Any) -> None:
        raise DatasetError("the registry's latest versions are written by registering a model")


def frame_arrays(
    frame: pd.DataFrame, features: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, y, patient_nbr)`` of a processed frame."""
    return (
        frame[features].to_numpy(dtype="float64"),
        frame[TARGET].to_numpy(),
        frame["patient_nbr"].to_numpy(),
    )


# A window's batches: ``read(columns)`` yields those columns in frames of a bounded row count,
# reading the window again on every call.
Batches = Callable[[list[str]], Iterator[pd.DataFrame]]


class StoredWindow:
    """One window's parquet in a snapshot folder, hash-checked before any of it is used.

    Read whole (:meth:`frame`) or in row batches (:meth:`batch_reader`) without holding the file:
    the batches come from a local copy that was hashed while it was streamed.
    """

    def __init__(self, store: AtomicStore, path: str, sha256: str, rows: int | None) -> None:
        self._store, self._path, self._sha256, self._rows = store, path, sha256, rows

    def frame(self) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self._store.read_verified(self._path, self._sha256)))

    @property
    def rows(self) -> int:
        """From the signed metadata; a snapshot saved before it recorded rows is read to count."""
        return self._rows if self._rows is not None else len(self.frame())

    @contextmanager
    def batch_reader(self, batch_rows: int) -> Iterator[Batches]:
        with tempfile.TemporaryDirectory(prefix="snapshot-window-") as folder:
            local = os.path.join(folder, posixpath.basename(self._path))
            self._store.copy_verified(self._path, self._sha256, local)

            def read(columns: list[str]) -> Iterator[pd.DataFrame]:
                # Row group by row group: ParquetFile.iter_batches kept ~125 MB of Arrow memory
                # per 50k-row group read (pyarrow 26), growing with the file.
                parquet = pq.ParquetFile(local)
                for group in range(parquet.num_row_groups):
                    table = parquet.read_row_group(group, columns=columns, use_threads=False)
                    for start in range(0, table.num_rows, batch_rows):
                        yield table.slice(start, batch_rows).to_pandas()

            yield read


class StreamedWindow:
    """A processed window produced batch by batch when it is saved, never held whole.

    ``frames()`` yields the window's frames (each read and processed on demand); ``rows`` is
    known beforehand, so the snapshot's metadata is complete before the first frame is made.
    """

    def __init__(self, frames: Callable[[], Iterator[pd.DataFrame]], rows: int) -> None:
        self.frames, self.rows = frames, rows


class TrainingSnapshot:
    """The preprocessed train/test/OOT sets of one run, with the preprocessor fitted on train.

    Frames hold ``ROW_KEYS``, the processed feature columns (``metadata["processed_features"]``)
    and the target. A window is a frame, or a :class:`StoredWindow` read on first use, so a task
    pays only for the windows it touches, and a train window larger than memory can be streamed
    (:meth:`batches`); preprocessing past the task's memory hands its windows over as
    :class:`StreamedWindow`, which the dataset writes batch by batch.
    """

    def __init__(
        self,
        train: pd.DataFrame | StoredWindow | StreamedWindow,
        test: pd.DataFrame | StoredWindow | StreamedWindow,
        oot: pd.DataFrame | StoredWindow | StreamedWindow,
        preprocessor: Any,
        metadata: dict[str, Any],
    ) -> None:
        self._windows = {"train": train, "test": test, "oot": oot}
        self.preprocessor = preprocessor
        self.metadata = metadata

    @property
    def train(self) -> pd.DataFrame:
        return self.frame("train")

    @property
    def test(self) -> pd.DataFrame:
        return self.frame("test")

    @property
    def oot(self) -> pd.DataFrame:
        return self.frame("oot")

    def frame(self, window: str) -> pd.DataFrame:
        """The whole window in memory (read and kept on first use)."""
        source = self._windows[window]
        if isinstance(source, StoredWindow):
            source = self._windows[window] = source.frame()
        elif isinstance(source, StreamedWindow):
            source = self._windows[window] = pd.concat(source.frames(), ignore_index=True)
        return source

    def rows(self, window: str) -> int:
        source = self._windows[window]
        return source.rows if isinstance(source, StoredWindow | StreamedWindow) else len(source)

    def streamed(self, window: str) -> StreamedWindow | None:
        """The window as it is produced batch by batch (None: it is a frame or stored)."""
        source = self._windows[window]
        return source if isinstance(source, StreamedWindow) else None

    def arrays(self, window: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(X, y, patient_nbr)`` of a window, as the estimators and the CV splitter take them."""
        return frame_arrays(self.frame(window), self.metadata["processed_features"])

    @contextmanager
    def batches(self, window: str, batch_rows: int) -> Iterator[Batches]:
        """The window's columns in frames of at most ``batch_rows`` rows, re-readable while the
        block is open; a stored window is hash-checked first, streaming, so never held whole."""
        source = self._windows[window]
        if isinstance(source, StoredWindow):
            with source.batch_reader(batch_rows) as read:
                yield read
            return
        source = self.frame(window)
        yield lambda columns: (
            source.iloc[start : start + batch_rows][columns]
            for start in range(0, len(source), batch_rows)
        )


SNAPSHOT_NAME = r"train_data_\d{8}T\d{12}Z"  # what save() names a snapshot folder


class TrainingSnapshotDataset(_SignedStoreDataset):
    """Snapshots under ``<path>/train_data_<timestamp>/`` with a ``<path>/latest.txt`` pointer.

    Each save writes ``{train,test,oot}_processed.parquet`` (row groups of at most
    ``row_group_rows``, so a window can be read in bounded batches), ``preprocessor.pkl`` and a
    signed ``metadata.json`` (with every file's sha256 and row count, and the snapshot
    ``version``), then flips the pointer; a load follows the pointer, verifies the signature (so a
    ``metadata.json`` rewritten next to a swapped pickle is refused) and hash-checks the pickle
    before unpickling; each window is hash-checked when it is first read.
    """

    _WINDOWS = ("train", "test", "oot")

    def __init__(self, *, row_group_rows: int = 20_000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._row_group_rows = row_group_rows

    def load(self) -> TrainingSnapshot:
        version = self._store.read_pointer(self._store.path("latest.txt"), SNAPSHOT_NAME)
        path = self._store.path(version, "metadata.json")
        what = f"the snapshot metadata {self._store.url(path)}"
        meta = self._signing.verify(SNAPSHOT_PURPOSE, self._store.read_json(path), what)
        if meta.get("version") != version:  # a signed metadata.json copied into another folder
            raise ModelIntegrityError(f"refusing {what}: it is signed for {meta.get('version')!r}")
        windows = {
            w: StoredWindow(
                self._store,
                self._store.path(version, f"{w}_processed.parquet"),
                meta["files"][f"{w}_processed.parquet"],
                meta.get("rows", {}).get(w),
            )
            for w in self._WINDOWS
        }
        name = self._store.path(version, "preprocessor.pkl")
        preprocessor = pickle.loads(
            self._store.read_verified(name, meta["files"]["preprocessor.pkl"])
        )
        return TrainingSnapshot(**windows, preprocessor=preprocessor, metadata=meta)

    def save(self, data: TrainingSnapshot) -> None:
        version = f"train_data_{utc_timestamp()}"
        files = {}
        payloads = {}
        for window in self._WINDOWS:
            name = f"{window}_processed.parquet"
            streamed = data.streamed(window)
            if streamed is None:
                payloads[name] = _parquet_bytes(data.frame(window), self._row_group_rows)
            else:
                files[name] = self._write_streamed(self._store.path(version, name), streamed)
        payloads["preprocessor.pkl"] = pickle.dumps(data.preprocessor, pickle.HIGHEST_PROTOCOL)
        for name, payload in payloads.items():
            self._store.write_bytes(self._store.path(version, name), payload)
            files[name] = hashlib.sha256(payload).hexdigest()
        rows = {window: data.rows(window) for window in self._WINDOWS}
        self._store.write_json(
            self._store.path(version, "metadata.json"),
            self._signing.sign(
                SNAPSHOT_PURPOSE,
                {**data.metadata, "version": version, "files": files, "rows": rows},
            ),
        )
        self._store.write_bytes(self._store.path("latest.txt"), version.encode())

    def _write_streamed(self, path: str, window: StreamedWindow) -> str:
        """Write ``window`` frame by frame (row groups of at most ``row_group_rows``) to a local
        file, then upload it in chunks, hashing on the way; its sha256."""
        with tempfile.TemporaryDirectory(prefix="snapshot-window-") as folder:
            local = os.path.join(folder, posixpath.basename(path))
            writer = None
            for frame in window.frames():
                if writer is None:
                    schema = pa.Schema.from_pandas(frame, preserve_index=False)
                    writer = pq.ParquetWriter(local, schema)
                table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
                writer.write_table(table, row_group_size=self._row_group_rows)
            if writer is None:
                raise DatasetError(f"{self._store.url(path)}: the streamed window has no rows")
            writer.close()
            with open(local, "rb") as source, atomic_write(path, fs=self._store.fs) as target:
                sha256, _ = copy_hashing(source, target)
        return sha256

    def _exists(self) -> bool:
        return self._store.exists(self._store.path("latest.txt"))

    def _describe(self) -> dict[str, Any]:
        return {**super()._describe(), "row_group_rows": self._row_group_rows}


class SignedPickleDataset(AbstractDataset):
    """A pickle handed from one training node to the next (``{algorithm}.estimator``, ``.calibrator``).

    These sit in the datamart's ``work/`` prefix, which more roles can write than the registry, so
    ``<filepath>.sig.json`` is written after the pickle with its sha256 and the file's own path,
    signed; a load verifies both before unpickling (a pickle swapped in from elsewhere, or the
    calibrator copied over the estimator, is refused).
    """

    def __init__(
        self,
        *,
        filepath: str,
        signing: SigningKey | dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        folder, self._name = posixpath.split(filepath.rstrip("/"))
        self._store = AtomicStore(folder, {**(credentials or {}), **(fs_args or {})})
        self._signing = signing_key(signing)
        self.metadata = metadata

    @property
    def _path(self) -> str:
        return self._store.path(self._name)

    def load(self) -> Any:
        sig_path = f"{self._path}.sig.json"
        what = f"the signature {self._store.url(sig_path)}"
        statement = self._signing.verify(PICKLE_PURPOSE, self._store.read_json(sig_path), what)
        if statement.get("path") != self._path:
            raise ModelIntegrityError(
                f"refusing {what}: it is signed for {statement.get('path')!r}"
            )
        return pickle.loads(self._store.read_verified(self._path, statement["sha256"]))

    def save(self, data: Any) -> None:
        payload = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
        self._store.write_bytes(self._path, payload)
        statement = {"path": self._path, "sha256": hashlib.sha256(payload).hexdigest()}
        self._store.write_json(
            f"{self._path}.sig.json", self._signing.sign(PICKLE_PURPOSE, statement)
        )

    def _exists(self) -> bool:
        return self._store.exists(f"{self._path}.sig.json")

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._store.url(self._path)}


def _parquet_bytes(frame: pd.DataFrame, row_group_rows: int) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, row_group_size=row_group_rows)
    return buffer.getvalue()
