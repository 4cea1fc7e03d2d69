"""Put the UCI file into the raw layer, verified, with a sidecar saying where it came from.

Source order: an explicit path (or ``READMIT_RAW_DATA``), else the official UCI download, else the
synthetic generator with a loud warning. Real data is always checked against the sha256 of the
original ``diabetic_data.csv``: a mismatch is an error, never a reason to fall back to synthetic
data, because silently training on the wrong file is worse than stopping.

The raw layer holds ``diabetic_data.csv.gz`` (gzip of the original CSV bytes) and
``diabetic_data.source.json``::

    {"data_source": "uci" | "synthetic", "origin": <path, URL or "synthetic:seed=S,rows=N">,
     "sha256_uncompressed": <hex>, "rows": <data rows>, "acquired_at": <ISO 8601 UTC>}
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import logging
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from readmit_kedro.io.atomic import atomic_write
from readmit_kedro.landing import DEFAULT_RAW_DIR, ENV_VAR, RAW_FILENAME, SIDECAR_FILENAME
from readmit_kedro.landing.synthetic import DEFAULT_ROWS, DEFAULT_SEED, write_synthetic_csv_gz

__all__ = [
    "ENV_VAR",
    "RAW_FILENAME",
    "SIDECAR_FILENAME",
    "UCI_SHA256",
    "UCI_URL",
    "AcquisitionError",
    "AcquisitionResult",
    "ChecksumMismatchError",
    "acquire",
    "csv_sha256",
    "read_sidecar",
    "sidecar_path",
]

log = logging.getLogger(__name__)

UCI_SHA256 = "0689e7ec031237dc63031b938805c48377748761a3b26acab621567afa24df97"
UCI_URL = (
    "https://archive.ics.uci.edu/static/public/296/"
    "diabetes+130-us+hospitals+for+years+1999-2008.zip"
)
ZIP_MEMBERS = ("dataset_diabetes/diabetic_data.csv", "diabetic_data.csv")

_CHUNK = 1 << 20


class AcquisitionError(Exception):
    """The raw data could not be obtained (a user-facing, one-line reason)."""


class ChecksumMismatchError(AcquisitionError):
    """A file offered as the UCI data is not the UCI data."""


@dataclass(frozen=True)
class AcquisitionResult:
    """Where the raw file is, what the sidecar says, and whether this call changed anything."""

    path: Path
    sidecar: dict[str, Any]
    changed: bool


def sidecar_path(raw_path: str | os.PathLike[str]) -> Path:
    """``.../diabetic_data.csv.gz`` -> ``.../diabetic_data.source.json``."""
    raw = Path(raw_path)
    if raw.name == RAW_FILENAME:
        return raw.with_name(SIDECAR_FILENAME)
    return raw.with_name(raw.name.removesuffix(".gz").removesuffix(".csv") + ".source.json")


def read_sidecar(raw_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The raw file's provenance record, or None if there is none (or it is unreadable)."""
    try:
        record = json.loads(sidecar_path(raw_path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return record if isinstance(record, dict) else None


def csv_sha256(path: str | os.PathLike[str]) -> tuple[str, int]:
    """sha256 and data-row count of the uncompressed CSV in a .csv, .csv.gz or UCI .zip file."""
    digest, counter = hashlib.sha256(), _RowCounter()
    with _open_csv(Path(path)) as stream:
        while chunk := stream.read(_CHUNK):
            digest.update(chunk)
            counter.update(chunk)
    return digest.hexdigest(), counter.rows


def acquire(
    raw_dir: str | os.PathLike[str] = DEFAULT_RAW_DIR,
    source: str | os.PathLike[str] | None = None,
    *,
    synthetic_rows: int | None = None,
    seed: int | None = None,
    url: str | None = None,
    timeout: float = 30.0,
    fallback_rows: int = DEFAULT_ROWS,
) -> AcquisitionResult:
    """Fill ``raw_dir`` with the raw file and its sidecar; a no-op when the right file is there.

    ``synthetic_rows`` forces synthetic data of that size. Otherwise: ``source`` if given, else the
    path in ``$READMIT_RAW_DATA``, else a download from ``url``; only if the download fails is
    synthetic data (``fallback_rows`` rows, seed ``seed`` or 42) generated, with a WARNING.
    """
    raw_path = Path(raw_dir) / RAW_FILENAME
    seed = DEFAULT_SEED if seed is None else seed
    url = url or UCI_URL
    if synthetic_rows is not None:
        if source is not None:
            raise AcquisitionError("give either a source file or a synthetic row count, not both")
        return _acquire_synthetic(raw_path, synthetic_rows, seed)

    explicit = source if source is not None else os.environ.get(ENV_VAR) or None
    if _holds_uci(raw_path):
        log.info("%s already holds the verified UCI file; nothing to do", raw_path)
        return _ensure_sidecar(raw_path, "uci", str(explicit or raw_path), UCI_SHA256)
    if explicit is not None:
        named = "--source" if source is not None else f"${ENV_VAR}"
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise AcquisitionError(f"{path}: no such file (named by {named})")
        return _acquire_uci(raw_path, path, origin=str(path.resolve()))

    try:
        return _download_uci(raw_path, url, timeout)
    except _DownloadFailed as exc:
        log.warning(
            "The UCI download failed (%s). FALLING BACK TO SYNTHETIC DATA (%s rows, seed %s): "
            "results will not describe real patients. Set %s to the real file to use it.",
            exc,
            fallback_rows,
            seed,
            ENV_VAR,
        )
    return _acquire_synthetic(raw_path, fallback_rows, seed)


# --------------------------------------------------------------------------------------------------


class _DownloadFailed(Exception):
    """The UCI server could not be reached or did not return the archive."""


class _RowCounter:
    """Counts CSV data rows from newline bytes (the UCI file has no quoted line breaks)."""

    def __init__(self) -> None:
        self.newlines = 0
        self.last = b"\n"

    def update(self, chunk: bytes) -> None:
        self.newlines += chunk.count(b"\n")
        self.last = chunk[-1:]

    @property
    def rows(self) -> int:
        lines = self.newlines + (self.last != b"\n")
        return max(lines - 1, 0)  # minus the header


class _CsvStream:
    """Reads of a source stream; a corrupt or truncated source becomes a one-line error."""

    def __init__(self, stream: IO[bytes], path: Path) -> None:
        self._stream, self._path = stream, path

    def read(self, size: int) -> bytes:
        try:
            return self._stream.read(size)
        except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
            raise AcquisitionError(f"{self._path}: cannot read it ({exc})") from exc


@contextmanager
def _open_csv(path: Path) -> Iterator[_CsvStream]:
    """The uncompressed CSV bytes of a .csv, .csv.gz or .zip (UCI layout) file, as a stream."""
    name = path.name.lower()
    if not name.endswith((".zip", ".gz", ".csv")):
        raise AcquisitionError(f"{path}: expected a .csv, .csv.gz or .zip file")
    with ExitStack() as stack:
        try:
            if name.endswith(".zip"):
                archive = stack.enter_context(zipfile.ZipFile(path))
                stream = stack.enter_context(archive.open(_zip_member(archive, path)))
            elif name.endswith(".gz"):
                stream = stack.enter_context(gzip.open(path, "rb"))
            else:
                stream = stack.enter_context(path.open("rb"))
        except FileNotFoundError as exc:
            raise AcquisitionError(f"{path}: no such file") from exc
        except (OSError, zipfile.BadZipFile) as exc:
            raise AcquisitionError(f"{path}: cannot open it ({exc})") from exc
        yield _CsvStream(stream, path)


def _zip_member(archive: zipfile.ZipFile, path: Path) -> str:
    names = archive.namelist()
    for wanted in ZIP_MEMBERS:
        if wanted in names:
            return wanted
    raise AcquisitionError(f"{path}: no {' or '.join(ZIP_MEMBERS)} in the archive (found {names})")


def _holds_uci(raw_path: Path) -> bool:
    if not raw_path.is_file():
        return False
    try:
        return csv_sha256(raw_path)[0] == UCI_SHA256
    except AcquisitionError:
        return False  # unreadable (e.g. truncated): it will be replaced


def _acquire_uci(raw_path: Path, source: Path, origin: str) -> AcquisitionResult:
    """Recompress ``source`` into the raw layer, publishing it only if the checksum is right."""
    digest, counter = hashlib.sha256(), _RowCounter()
    with _open_csv(source) as stream, atomic_write(raw_path) as handle:
        with gzip.GzipFile(filename="", mode="wb", fileobj=handle, compresslevel=6, mtime=0) as out:
            while chunk := stream.read(_CHUNK):
                digest.update(chunk)
                counter.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != UCI_SHA256:  # raising here discards the temp file; raw_path is untouched
            raise ChecksumMismatchError(
                f"{source}: sha256 of the uncompressed CSV is {actual}, expected {UCI_SHA256} "
                "(the UCI diabetic_data.csv); refusing to use it"
            )
    log.info("Verified and stored %s (%d rows) from %s", raw_path, counter.rows, source)
    sidecar = _write_sidecar(raw_path, "uci", origin, UCI_SHA256, counter.rows)
    return AcquisitionResult(raw_path, sidecar, changed=True)


def _download_uci(raw_path: Path, url: str, timeout: float) -> AcquisitionResult:
    """Fetch the UCI archive next to the raw file, then verify and store it like a local one."""
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    log.info("Downloading the UCI archive from %s (timeout %ss)", url, timeout)
    fd, tmp = tempfile.mkstemp(dir=raw_path.parent, prefix=".uci-download.", suffix=".zip")
    try:
        with os.fdopen(fd, "wb") as handle:
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    shutil.copyfileobj(response, handle, _CHUNK)
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
                raise _DownloadFailed(f"{url}: {getattr(exc, 'reason', exc)}") from exc
        if not zipfile.is_zipfile(tmp):
            raise _DownloadFailed(f"{url}: the response is not a zip archive")
        return _acquire_uci(raw_path, Path(tmp), origin=url)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _acquire_synthetic(raw_path: Path, rows: int, seed: int) -> AcquisitionResult:
    if rows < 1:
        raise AcquisitionError(f"synthetic row count must be at least 1, got {rows}")
    origin = f"synthetic:seed={seed},rows={rows}"
    existing = read_sidecar(raw_path)
    if existing and existing.get("origin") == origin and raw_path.is_file():
        try:
            if csv_sha256(raw_path)[0] == existing.get("sha256_uncompressed"):
                log.info("%s already holds %s; nothing to do", raw_path, origin)
                return AcquisitionResult(raw_path, existing, changed=False)
        except AcquisitionError:
            pass  # unreadable: regenerate
    log.warning(
        "Generating SYNTHETIC data (%s rows, seed %s) into %s: not real patients.",
        rows,
        seed,
        raw_path,
    )
    written = write_synthetic_csv_gz(raw_path, rows, seed)
    sidecar = _write_sidecar(raw_path, "synthetic", origin, written.sha256_uncompressed, rows)
    return AcquisitionResult(raw_path, sidecar, changed=True)


def _ensure_sidecar(raw_path: Path, data_source: str, origin: str, sha: str) -> AcquisitionResult:
    """Keep a matching sidecar as is; rewrite a missing or stale one (e.g. after a crash)."""
    existing = read_sidecar(raw_path)
    if existing and existing.get("sha256_uncompressed") == sha:
        return AcquisitionResult(raw_path, existing, changed=False)
    _, rows = csv_sha256(raw_path)
    return AcquisitionResult(
        raw_path, _write_sidecar(raw_path, data_source, origin, sha, rows), changed=True
    )


def _write_sidecar(
    raw_path: Path, data_source: str, origin: str, sha: str, rows: int
) -> dict[str, Any]:
    sidecar = {
        "data_source": data_source,
        "origin": origin,
        "sha256_uncompressed": sha,
        "rows": rows,
        "acquired_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    with atomic_write(sidecar_path(raw_path)) as handle:
        handle.write((json.dumps(sidecar, indent=2) + "\n").encode())
    return sidecar
