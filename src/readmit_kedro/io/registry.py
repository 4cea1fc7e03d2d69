"""Model registry: versioned model bundles per algorithm and a champion pointer, on any fsspec FS.

Layout under ``root`` (a local folder or ``s3://bucket/prefix``)::

    <root>/<algorithm>/v<timestamp>/model.pkl       pickled bundle (fitted preprocessor + estimator)
    <root>/<algorithm>/v<timestamp>/metrics.json
    <root>/<algorithm>/v<timestamp>/metadata.json   params, data version, environment, sha256
    <root>/<algorithm>/versions.json                index of registered versions (record of truth)
    <root>/<algorithm>/latest                       name of the newest registered version
    <root>/metadata/metadata_<timestamp>.json       one file per champion change (the history)
    <root>/metadata/latest.json                     the current champion

Readers never see a half-written state: a version's files are written before the index, and the
pointers (``versions.json``, ``latest``, ``metadata/latest.json``) are written last, each in one
atomic step (:func:`readmit_kedro.io.atomic.atomic_write`). A crash in between leaves an
unindexed folder that nothing reads. Runs that overlap (a manual run during a scheduled one, an
orphaned task) lose nothing: the index and ``latest`` are updated by compare-and-swap, a
registration re-applied to the other run's result; a champion change is a compare-and-swap of
``metadata/latest.json`` against the champion it was computed from, refused if another change got
there first, so the pointer and the ``previous`` chain of the history always agree.

Unpickling runs code, so every load hashes the bundle bytes and compares them with the sha256 in
the index *before* unpickling; a tampered or truncated bundle is refused. The index lives in the
same bucket as the bundles, so its entries and the champion entries are signed
(:mod:`readmit_kedro.io.signing`: KMS in prod, a local Ed25519 key in base/dev) and every record is
verified before its sha256 is trusted: rewriting ``versions.json`` or ``metadata/latest.json`` to
vouch for another file is refused.

Typical use (inference, monitoring)::

    registry = ModelRegistry("s3://bucket/model_registry", signing={"backend": "aws_kms", ...})
    champion = registry.load_champion()          # LoadedModel(record, model) or None
    risk = champion.model.predict_proba(gold_features)[:, 1]
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import platform
import posixpath
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from typing import Any, NamedTuple

from readmit_kedro.io.atomic import (
    VERSION_NAME,
    AtomicStore,
    ConcurrentUpdateError,
    ModelIntegrityError,
    check_name,
)
from readmit_kedro.io.signing import SignatureError, SigningKey, signing_key

logger = logging.getLogger(__name__)

TIMESTAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
ANY_CHAMPION = "any"  # promote(over=...): whatever the champion is (never a history id)
CHAMPION_DIR = "metadata"
VERSION_PURPOSE = "registry version"  # what a signature vouches for (never interchangeable)
CHAMPION_PURPOSE = "registry champion"
# What a version record keeps of its training metadata, under the signature: where it came from
# and which years it was trained and tested on.
PROVENANCE = (
    "run_date", "windows", "training_data_version", "training_inputs_sha256", "data_source",
)  # fmt: skip
# An algorithm is one folder under the root: a plain lower-case name, never a path.
ALGORITHM_NAME = r"[a-z][a-z0-9_]{0,63}"
HISTORY_NAME = r"metadata_\d{8}T\d{12}Z\.json"  # a champion history entry
# Packages whose versions must match for a pickled bundle to behave as it did when trained.
_TRACKED_PACKAGES = (
    "scikit-learn",
    "xgboost",
    "numpy",
    "pandas",
    "scipy",
    "kedro",
    "readmit-kedro",
)
_MUST_MATCH = ("scikit-learn", "xgboost")


class RegistryError(RuntimeError):
    """The registry cannot do what was asked (unknown version, nothing to roll back to, ...)."""


class LoadedModel(NamedTuple):
    """A registry record and the verified, unpickled bundle it describes."""

    record: dict[str, Any]
    model: Any


def utc_timestamp() -> str:
    """Sortable UTC timestamp used in version and history names."""
    return datetime.now(tz=UTC).strftime(TIMESTAMP_FORMAT)


class ModelRegistry:
    """Versioned model bundles per algorithm, with a promotable, roll-back-able champion.

    ``root`` is a local path or any fsspec URL (``s3://bucket/prefix``); ``storage_options`` go to
    fsspec (e.g. ``{"profile": "ml"}`` for s3fs). Records are plain dicts, stable for JSON/CLI use:
    a version record has ``algorithm, version, created_at, sha256, size_bytes, metrics`` (scalar
    metrics only), what the metadata gives of :data:`PROVENANCE`, and a ``signature``. ``signing``
    is a :class:`~readmit_kedro.io.signing.SigningKey` or a ``model_signing`` conf block (default:
    base's local key file).
    """

    def __init__(
        self,
        root: str | AtomicStore,
        storage_options: dict[str, Any] | None = None,
        *,
        signing: SigningKey | dict[str, Any] | None = None,
    ) -> None:
        # A dataset passes its own store (root and storage options already set up).
        self.store = root if isinstance(root, AtomicStore) else AtomicStore(root, storage_options)
        self.root = self.store.root
        self.signing = signing_key(signing)

    # ------------------------------------------------------------------------------------ versions
    def register(
        self,
        algorithm: str,
        model: Any,
        *,
        metrics: dict[str, Any],
        metadata: dict[str, Any],
    ) -> dict[str, Any]:
        """Store ``model`` as a new version of ``algorithm`` and return its record.

        Order: bundle, metrics, metadata, then the ``versions.json`` index, then ``latest``.
        """
        version = self._new_version(algorithm)
        bundle = pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
        sha256 = hashlib.sha256(bundle).hexdigest()
        record = {
            "algorithm": algorithm,
            "version": version,
            "created_at": datetime.now(tz=UTC).isoformat(),
            "sha256": sha256,
            "size_bytes": len(bundle),
            "metrics": _scalars(metrics),
            **{k: metadata[k] for k in PROVENANCE if k in metadata},
        }  # fmt: skip
        record = self.signing.sign(VERSION_PURPOSE, record)
        folder = self.store.path(algorithm, version)
        self.store.write_bytes(posixpath.join(folder, "model.pkl"), bundle)
        self.store.write_json(posixpath.join(folder, "metrics.json"), metrics)
        self.store.write_json(
            posixpath.join(folder, "metadata.json"),
            {**metadata, **record, "environment": _environment()},
        )
        # Both as compare-and-swap: two runs registering at once (a manual run during a
        # scheduled one, an orphaned task) both land in the index, and latest names the newest.
        self.store.update_text(
            self._index_path(algorithm),
            lambda text: _json_text([*json.loads(text or "[]"), record]),
        )
        self.store.update_text(
            self.store.path(algorithm, "latest"),
            lambda held: version if held is None or held < version else None,
        )
        logger.info("registered %s %s (sha256 %s) in %s", algorithm, version, sha256, self.root)
        return record

    def algorithms(self) -> list[str]:
        """Algorithms with at least one registered version."""
        return [
            name
            for name in self.store.list(self.store.path())
            if re.fullmatch(ALGORITHM_NAME, name) and self.list_versions(name)
        ]

    def list_versions(self, algorithm: str) -> list[dict[str, Any]]:
        """Records of every registered version of ``algorithm``, oldest first (as stored: for
        listing; :meth:`record` is the verified one)."""
        return self.store.read_json(self._index_path(algorithm), default=[])

    def record(self, algorithm: str, version: str = "latest") -> dict[str, Any]:
        """The index record of one version (``"latest"`` follows the algorithm's pointer), after
        verifying its signature: its sha256 is what loads are checked against."""
        check_name(algorithm, ALGORITHM_NAME, "algorithm")
        if version == "latest":
            try:
                version = self.store.read_pointer(
                    self.store.path(algorithm, "latest"), VERSION_NAME
                )
            except FileNotFoundError:
                raise RegistryError(
                    f"no version of {algorithm!r} is registered in {self.root}"
                ) from None
        for record in self.list_versions(algorithm):
            if isinstance(record, dict) and record.get("version") == version:
                return self._verified_record(record, algorithm, version)
        raise RegistryError(
            f"{algorithm} {version} is not in {self.root}/{algorithm}/versions.json"
        )

    def load(self, algorithm: str, version: str = "latest") -> Any:
        """The unpickled bundle of one version, after checking its sha256 against the index."""
        return self._load_verified(self.record(algorithm, version))

    # ------------------------------------------------------------------------------------ champion
    def champion(self, *, replace_unverified: bool = False) -> dict[str, Any] | None:
        """The current champion record, or ``None`` before the first promotion.

        Keys: ``algorithm, version, sha256, metrics, promoted_at, reason, history_id, previous``
        and ``signature``, verified before it is returned. ``replace_unverified``: an unsigned or
        unverifiable entry counts as no champion (logged), so that a training run can replace it;
        the only effect a forger then has is that a freshly trained, signed model is promoted.
        """
        return self._champion_state(replace_unverified)[1]

    def champion_record(self, *, replace_unverified: bool = False) -> dict[str, Any] | None:
        """The champion entry with the ``run_date`` and ``windows`` its version was trained with.

        Checked against the version's signed index record; no bundle is read. A champion can only
        be compared honestly on rows outside its train window. Versions registered before the
        index held their windows take them from their ``metadata.json``.
        """
        champion = self.champion(replace_unverified=replace_unverified)
        if champion is None:
            return None
        with self._unverified_is_none(replace_unverified):
            record = self.record(champion["algorithm"], champion["version"])
            if record["sha256"] != champion["sha256"]:
                raise ModelIntegrityError(
                    f"champion record names sha256 {champion['sha256']} but the index of "
                    f"{champion['algorithm']} {champion['version']} says {record['sha256']}"
                )
            return {**champion, **self._training_provenance(record)}
        return None

    def load_champion(self, *, replace_unverified: bool = False) -> LoadedModel | None:
        """:meth:`champion_record` with its verified bundle, or ``None`` if there is no champion."""
        champion = self.champion_record(replace_unverified=replace_unverified)
        if champion is None:
            return None
        return LoadedModel(champion, self._load_verified(champion))

    def promote(
        self,
        algorithm: str,
        version: str,
        reason: str,
        *,
        replace_unverified: bool = False,
        over: str | None = ANY_CHAMPION,
    ) -> dict[str, Any]:
        """Make a registered version the champion; its signed record and bundle are checked first.

        ``replace_unverified``: an unverifiable current champion is replaced (see :meth:`champion`).
        ``over``: the ``history_id`` of the champion the caller decided against (None: there was
        none); refused with :class:`ConcurrentUpdateError` if another one is champion by now, so
        a decision made against an older champion never replaces a newer one.
        """
        record = self.record(algorithm, version)
        self.store.read_verified(self._bundle_path(record), record["sha256"])
        token, current = self._champion_state(replace_unverified)
        held = current["history_id"] if current else None
        if over != ANY_CHAMPION and held != over:
            raise ConcurrentUpdateError(
                f"the champion in {self.root} is {held or 'none'}, not {over or 'none'} that this "
                f"decision was made against (another promotion or rollback since): {algorithm} "
                f"{version} was not made champion. Decide again against the current champion."
            )
        entry = {
            "algorithm": algorithm,
            "version": record["version"],
            "sha256": record["sha256"],
            "metrics": record["metrics"],
            "reason": reason,
            "previous": current["history_id"] if current else None,
        }
        return self._set_champion(entry, token)

    def rollback(self, reason: str = "manual rollback") -> dict[str, Any]:
        """Restore the champion that the current one replaced (repeatable, back through history).

        Refused with :class:`ConcurrentUpdateError` if the champion changes while it runs: applied
        to a newer champion it would silently undo that promotion instead of the one it undid.
        """
        token, current = self._champion_state(False)
        if current is None or current.get("previous") is None:
            raise RegistryError(f"no earlier champion to roll back to in {self.root}")
        path = self.store.path(
            CHAMPION_DIR, check_name(current["previous"], HISTORY_NAME, "previous")
        )
        earlier = self.signing.verify(
            CHAMPION_PURPOSE,
            self.store.read_json(path),
            f"the champion entry {self.store.url(path)}",
        )
        record = self.record(earlier["algorithm"], earlier["version"])
        self.store.read_verified(self._bundle_path(record), record["sha256"])
        entry = {
            **{k: earlier[k] for k in ("algorithm", "version", "sha256", "metrics", "previous")},
            "reason": f"rollback from {current['algorithm']} {current['version']}: {reason}",
            "rolled_back_from": current["history_id"],
        }
        return self._set_champion(entry, token)

    def history(self) -> list[dict[str, Any]]:
        """Every champion change, oldest first."""
        names = self.store.list(self.store.path(CHAMPION_DIR))
        return [
            self.store.read_json(self.store.path(CHAMPION_DIR, name))
            for name in names
            if name.startswith("metadata_") and name.endswith(".json")  # not a temp file
        ]

    # ------------------------------------------------------------------------------------ internals
    @contextmanager
    def _unverified_is_none(self, enabled: bool) -> Iterator[None]:
        """Swallow (and log) a :class:`SignatureError` when ``enabled``; the caller returns None."""
        try:
            yield
        except SignatureError as error:
            if not enabled:
                raise
            logger.error("%s; treated as no champion, so this run's best model replaces it", error)

    def _champion_state(self, replace_unverified: bool) -> tuple[str | None, dict[str, Any] | None]:
        """The version token of ``metadata/latest.json`` as read, and its verified entry (None:
        no champion): a champion change is written only if the pointer is still that version."""
        path = self.store.path(CHAMPION_DIR, "latest.json")
        data, token = self.store.read_versioned(path)
        if data is None:
            return None, None
        what = f"the champion {self.store.url(path)}"
        with self._unverified_is_none(replace_unverified):
            return token, self.signing.verify(CHAMPION_PURPOSE, json.loads(data), what)
        return token, None

    def _set_champion(self, entry: dict[str, Any], token: str | None) -> dict[str, Any]:
        """Write the history entry, then flip ``latest.json`` if it is still version ``token``.

        If another champion change got there first, the history entry is removed (it never was
        the champion) and :class:`ConcurrentUpdateError` raised: the pointer and its history
        chain stay as that change left them.
        """
        stamp = utc_timestamp()
        entry = {**entry, "promoted_at": datetime.now(tz=UTC).isoformat(),
                 "history_id": f"metadata_{stamp}.json"}  # fmt: skip
        entry = self.signing.sign(CHAMPION_PURPOSE, entry)
        history = self.store.path(CHAMPION_DIR, entry["history_id"])
        self.store.write_if_unchanged(history, _json_text(entry).encode(), None)  # create only
        try:
            self._publish(self.store.path(CHAMPION_DIR, "latest.json"), entry, token)
        except ConcurrentUpdateError:
            self.store.fs.rm(history)
            raise ConcurrentUpdateError(
                f"the champion in {self.root} changed while this promotion or rollback ran "
                f"(another one got there first): {entry['algorithm']} {entry['version']} was "
                "not made champion and nothing was written. Look at the current champion "
                "(`readmit registry list`) and run it again if it still applies."
            ) from None
        logger.info(
            "champion is now %s %s: %s", entry["algorithm"], entry["version"], entry["reason"]
        )
        return entry

    def _publish(self, path: str, payload: dict[str, Any], token: str | None) -> None:
        """Write the champion pointer if it is still version ``token``; the last step."""
        self.store.write_if_unchanged(path, _json_text(payload).encode(), token)

    def _verified_record(
        self, record: dict[str, Any], algorithm: str, version: str
    ) -> dict[str, Any]:
        """``record`` if it is signed and is the entry of ``algorithm`` ``version`` it sits at."""
        what = f"the index entry of {algorithm} {version} in {self.root}/{algorithm}/versions.json"
        record = self.signing.verify(VERSION_PURPOSE, record, what)
        if (record.get("algorithm"), record.get("version")) != (algorithm, version):
            raise ModelIntegrityError(f"refusing {what}: it is signed for another model")
        return record

    def _load_verified(self, record: dict[str, Any]) -> Any:
        """Unpickle the bundle of a record from :meth:`record` (signature already verified)."""
        path = self._bundle_path(record)
        model = pickle.loads(self.store.read_verified(path, record["sha256"]))
        self._warn_on_version_drift(record)
        return model

    def _version_metadata(self, record: dict[str, Any]) -> dict[str, Any]:
        return self.store.read_json(
            self.store.path(record["algorithm"], record["version"], "metadata.json"), default={}
        )

    def _training_provenance(self, record: dict[str, Any]) -> dict[str, Any]:
        """The run date and windows a version was trained with (None where nothing says)."""
        source = record if "windows" in record else self._version_metadata(record)
        return {key: source.get(key) for key in ("run_date", "windows")}

    def _warn_on_version_drift(self, record: dict[str, Any]) -> None:
        metadata = self._version_metadata(record)
        trained = metadata.get("environment", {}).get("packages", {})
        installed = _environment(with_git=False)["packages"]
        for package in _MUST_MATCH:
            if trained.get(package) != installed.get(package):
                logger.warning(
                    "%s %s was trained with %s %s but %s is installed; predictions may differ",
                    record["algorithm"], record["version"], package, trained.get(package),
                    installed.get(package),
                )  # fmt: skip

    def _bundle_path(self, record: dict[str, Any]) -> str:
        return self.store.path(
            check_name(record["algorithm"], ALGORITHM_NAME, "algorithm"),
            check_name(record["version"], VERSION_NAME, "version"),
            "model.pkl",
        )

    def _index_path(self, algorithm: str) -> str:
        return self.store.path(check_name(algorithm, ALGORITHM_NAME, "algorithm"), "versions.json")

    def _new_version(self, algorithm: str) -> str:
        version = f"v{utc_timestamp()}"
        while self.store.exists(self.store.path(algorithm, version)):
            version = f"v{utc_timestamp()}"
        return version


def _json_text(payload: Any) -> str:
    """``payload`` as :meth:`AtomicStore.write_json` writes it."""
    return json.dumps(payload, indent=2, sort_keys=True)


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics`` without list values (e.g. calibration tables), nested dicts kept."""
    return {
        k: _scalars(v) if isinstance(v, dict) else v
        for k, v in metrics.items()
        if not isinstance(v, list)
    }


def _environment(*, with_git: bool = True) -> dict[str, Any]:
    packages = {}
    for name in _TRACKED_PACKAGES:
        try:
            packages[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            packages[name] = None
    return {
        "python": platform.python_version(),
        "packages": packages,
        "git_commit": _git_commit() if with_git else None,
    }


def _git_commit() -> str | None:
    """The commit being run: ``GIT_COMMIT`` (set in the image build) or the working tree's HEAD."""
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() or None
