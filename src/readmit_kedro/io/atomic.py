"""The one way this project writes a file: atomically for every reader.

:func:`atomic_write` is the primitive. Locally it writes a hidden temp file in the target's folder
and publishes it with ``os.replace`` (one rename); on an object store it streams one upload, which
the store makes visible only when it completes, and aborts the upload on error. Either way a reader
sees the previous file or the new one, never a part, and a crash leaves the previous good state.

Everything that persists goes through it: :class:`AtomicStore` (the model registry, training
snapshots, prediction tables), the ``_LATEST`` pointers of published tables, and the landing
files (raw copy, synthetic file, monthly extracts).
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem

__all__ = [
    "VERSION_NAME",
    "AtomicStore",
    "ConcurrentUpdateError",
    "ModelIntegrityError",
    "UnsafeNameError",
    "atomic_write",
]

# What this project writes as a version name: "v" + a UTC timestamp (%Y%m%dT%H%M%S%fZ). Pointers
# and pins must match it, so a pointer or parameter can never lead a reader out of its root.
VERSION_NAME = r"v\d{8}T\d{12}Z"


class ModelIntegrityError(RuntimeError):
    """A stored file does not match the sha256 recorded for it; it is never unpickled."""


class ConcurrentUpdateError(RuntimeError):
    """Another run changed a pointer between this run's read and its write: nothing was published."""


class UnsafeNameError(ValueError):
    """A pointer, pin or name is not one this project writes (a path, ``..``, another bucket)."""


def check_name(value: Any, pattern: str, what: str) -> str:
    """``value`` if it fully matches ``pattern``; :class:`UnsafeNameError` naming ``what``."""
    if not isinstance(value, str) or not re.fullmatch(pattern, value):
        raise UnsafeNameError(
            f"{what} {str(value)[:80]!r} is not a name this project writes (expected {pattern}); "
            "refusing to use it as part of a path"
        )
    return value


@contextmanager
def atomic_write(
    path: str | os.PathLike[str],
    storage_options: dict[str, Any] | None = None,
    *,
    fs: fsspec.AbstractFileSystem | None = None,
) -> Iterator[BinaryIO]:
    """A binary handle whose content replaces ``path`` in one step when the block exits cleanly.

    ``path`` is a local path or an fsspec URL (``storage_options`` go to fsspec); pass ``fs`` to
    write a path already stripped of its protocol on that filesystem. On any error nothing is
    published: the local temp file is removed, the upload aborted.
    """
    if fs is None:
        fs, path = fsspec.core.url_to_fs(os.fspath(path), **(storage_options or {}))
    path = os.fspath(path)
    if isinstance(fs, LocalFileSystem):
        with _local_atomic_write(path) as handle:
            yield handle
        return
    handle = fs.open(path, "wb")
    try:
        yield handle
    except BaseException:
        handle.discard()  # abort: the object is never created, the previous one stays
        raise
    handle.close()  # completes the upload: the new object appears in one step


def copy_hashing(source: BinaryIO, target: BinaryIO, chunk_bytes: int = 1 << 20) -> tuple[str, int]:
    """Copy ``source`` into ``target`` in chunks; the sha256 and size of what was copied.

    One pass for a file larger than memory: it is hashed while it moves, never held whole.
    """
    digest, size = hashlib.sha256(), 0
    while chunk := source.read(chunk_bytes):
        digest.update(chunk)
        target.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _short(text: str) -> str:
    return text if len(text) <= 60 else f"{text[:57]}..."


@contextmanager
def _locked(path: str) -> Iterator[None]:
    """An exclusive advisory lock beside ``path`` (``.<name>.lock``), released on exit."""
    import fcntl

    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f".{name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def _local_atomic_write(path: str) -> Iterator[BinaryIO]:
    # The temp name starts with "." and ends with ".tmp" so that listings by suffix (the landing
    # PartitionedDataset matches ".csv.gz", the registry's history matches "metadata_*.json")
    # never pick it up.
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; published data is readable like any other file
        os.replace(tmp, path)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


class AtomicStore:
    """Byte and JSON files under one fsspec root, written with :func:`atomic_write`, read
    hash-verified."""

    def __init__(self, root: str, storage_options: dict[str, Any] | None = None) -> None:
        self.root = root.rstrip("/")
        self.fs, self._base = fsspec.core.url_to_fs(self.root, **(storage_options or {}))

    def path(self, *parts: str) -> str:
        return posixpath.join(self._base, *parts)

    def url(self, path: str) -> str:
        """``path`` as the user would type it (with its protocol), for error messages."""
        return self.fs.unstrip_protocol(path) if "://" in self.root else path

    def exists(self, path: str) -> bool:
        return self.fs.exists(path)

    def list(self, path: str) -> list[str]:
        """Names directly under ``path`` (none if it is missing), never from a stale listing cache."""
        try:
            entries = self.fs.ls(path, detail=False, refresh=True)
        except FileNotFoundError:
            return []
        return sorted(posixpath.basename(p.rstrip("/")) for p in entries)

    def read_bytes(self, path: str) -> bytes:
        return self.fs.cat_file(path)

    def read_pointer(self, path: str, pattern: str) -> str:
        """The name a pointer file holds, refused unless it fully matches ``pattern``."""
        value = self.read_bytes(path).decode("utf-8", errors="replace").strip()
        return check_name(value, pattern, f"the pointer {self.url(path)} holds")

    def read_json(self, path: str, default: Any = None) -> Any:
        """Parsed JSON of ``path``, or ``default`` if it does not exist (one read, no race)."""
        try:
            return json.loads(self.read_bytes(path))
        except FileNotFoundError:
            return default

    def write_bytes(self, path: str, data: bytes) -> None:
        """Replace ``path`` in one step: readers see the old content or the new, never a part."""
        with atomic_write(path, fs=self.fs) as handle:
            handle.write(data)

    def read_versioned(self, path: str) -> tuple[bytes | None, str | None]:
        """Content of ``path`` (None: absent) and a token of that version for
        :meth:`write_if_unchanged`: the S3 ETag, locally the content's sha256."""
        if isinstance(self.fs, LocalFileSystem):
            try:
                data = self.read_bytes(path)
            except FileNotFoundError:
                return None, None
            return data, hashlib.sha256(data).hexdigest()
        bucket, key, _ = self.fs.split_path(path)
        try:  # the ETag first: if the object changes before the read, the If-Match fails
            etag = self.fs.call_s3("head_object", Bucket=bucket, Key=key)["ETag"]
            return self.read_bytes(path), etag
        except FileNotFoundError:
            return None, None

    def write_if_unchanged(self, path: str, data: bytes, token: str | None) -> None:
        """Replace ``path`` with ``data`` only if it is still the version ``token`` names (None:
        only if it is absent); else :class:`ConcurrentUpdateError` and nothing is written.

        Two runs that read, change and write one file (a manual run during a scheduled one, a
        backfill, an orphaned ECS task) would otherwise both write, and the later write would
        silently drop the earlier run's change. On S3 this is a conditional PUT (If-Match on the
        ETag, If-None-Match for a first write); locally, a compare and replace under a file lock.
        """
        if isinstance(self.fs, LocalFileSystem):
            with _locked(path):
                if self.read_versioned(path)[1] != token:
                    raise self._conflict(path, "changed since this run read it")
                self.write_bytes(path, data)
            return
        bucket, key, _ = self.fs.split_path(path)
        condition = {"IfNoneMatch": "*"} if token is None else {"IfMatch": token}
        try:
            self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, **condition)
        except OSError as exc:  # s3fs turns the ClientError into an OSError, keeping the cause
            code = getattr(exc.__cause__, "response", {}).get("Error", {}).get("Code")
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise self._conflict(path, "changed since this run read it") from None
            raise
        self.fs.invalidate_cache(path)

    def swap_pointer(self, path: str, expected: str | None, new: str) -> None:
        """Set the pointer ``path`` to ``new`` only if it still holds ``expected`` (None: absent).

        A :meth:`write_if_unchanged` of the version read: raises :class:`ConcurrentUpdateError`,
        leaving the pointer as the other run set it.
        """
        data, token = self.read_versioned(path)
        held = None if data is None else data.decode("utf-8", errors="replace").strip()
        if held != expected:
            detail = f"holds {_short(held or 'nothing')}, not {_short(expected or 'nothing')}"
            raise self._conflict(path, f"{detail} as when this run read it")
        self.write_if_unchanged(path, new.encode(), token)

    def update_bytes(
        self, path: str, change: Callable[[bytes | None], bytes | None], attempts: int = 20
    ) -> None:
        """Read-modify-write of a file that loses no concurrent update.

        ``change`` maps the current content (None: absent) to the new content (None: leave it);
        the write is a :meth:`write_if_unchanged` of the version read, and on a conflict the
        change is applied again to the other writer's result (two registrations of one algorithm
        both land in its index). An exception from ``change`` stops it with nothing written.
        """
        for _ in range(attempts):
            held, token = self.read_versioned(path)
            new = change(held)
            if new is None:
                return
            try:
                self.write_if_unchanged(path, new, token)
                return
            except ConcurrentUpdateError:
                continue
        raise ConcurrentUpdateError(f"{self.url(path)}: still contended after {attempts} attempts")

    def update_text(
        self, path: str, change: Callable[[str | None], str | None], attempts: int = 20
    ) -> None:
        """:meth:`update_bytes` of a small text file (``change`` sees it stripped)."""

        def on_bytes(data: bytes | None) -> bytes | None:
            text = None if data is None else data.decode("utf-8", errors="replace").strip()
            new = change(text)
            return None if new is None else new.encode()

        self.update_bytes(path, on_bytes, attempts)

    def _conflict(self, path: str, what: str) -> ConcurrentUpdateError:
        return ConcurrentUpdateError(
            f"{self.url(path)} {what}: another run published in between. Nothing was "
            "published; retry the run (it starts from the other run's result)."
        )

    def write_json(self, path: str, payload: Any) -> None:
        self.write_bytes(path, json.dumps(payload, indent=2, sort_keys=True).encode())

    def read_verified(self, path: str, sha256: str) -> bytes:
        """Bytes of ``path``; :class:`ModelIntegrityError` unless they hash to ``sha256``."""
        data = self.read_bytes(path)
        self._check_digest("unpickle", path, hashlib.sha256(data).hexdigest(), sha256, len(data))
        return data

    def copy_verified(self, path: str, sha256: str, target: str) -> None:
        """Copy ``path`` to the local file ``target`` in chunks, hashing on the way, so a file
        larger than memory is verified; :class:`ModelIntegrityError` (and no ``target``) unless it
        hashes to ``sha256``. Readers then use the copy, which nobody else can swap."""
        with self.fs.open(path, "rb") as source, open(target, "wb") as copy:
            actual, size = copy_hashing(source, copy)
        try:
            self._check_digest("read", path, actual, sha256, size)
        except ModelIntegrityError:
            os.remove(target)
            raise

    def _check_digest(self, action: str, path: str, actual: str, recorded: str, size: int) -> None:
        if actual != recorded:
            raise ModelIntegrityError(
                f"refusing to {action} {self.url(path)}: its sha256 {actual} does not match the "
                f"recorded {recorded} ({size} bytes; the file was modified or truncated)"
            )
