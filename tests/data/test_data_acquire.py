"""Acquisition: checksum always enforced, source order, .csv/.csv.gz/.zip inputs, idempotency."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
import shutil
import time
import zipfile
from pathlib import Path

import pytest

from readmit_kedro.landing import ENV_VAR, RAW_FILENAME, SIDECAR_FILENAME
from readmit_kedro.landing.acquire import (
    UCI_SHA256,
    AcquisitionError,
    ChecksumMismatchError,
    acquire,
    csv_sha256,
)
from readmit_kedro.landing.synthetic import synthetic_csv_chunks
from tests.data.conftest import closed_port


@pytest.fixture
def not_uci(tmp_path: Path) -> tuple[Path, bytes]:
    """A well-formed CSV in the raw layout that is not the UCI file (300 synthetic rows)."""
    payload = b"".join(synthetic_csv_chunks(300, seed=9))
    path = tmp_path / "offered" / "diabetic_data.csv"
    path.parent.mkdir()
    path.write_bytes(payload)
    return path, payload


@pytest.fixture(autouse=True)
def no_env_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test states its own sources: a READMIT_RAW_DATA from the shell must not leak in."""
    monkeypatch.delenv(ENV_VAR, raising=False)


def zip_of(csv_path: Path, member: str) -> Path:
    target = csv_path.with_name(f"{member.replace('/', '_')}.zip")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(csv_path, member)
    return target


def gzip_of(csv_path: Path) -> Path:
    target = csv_path.with_name(csv_path.name + ".gz")
    target.write_bytes(gzip.compress(csv_path.read_bytes()))
    return target


def test_a_file_that_is_not_uci_is_rejected_naming_it_and_both_hashes(
    tmp_path: Path, not_uci: tuple[Path, bytes]
) -> None:
    path, payload = not_uci
    raw_dir = tmp_path / "raw"
    with pytest.raises(ChecksumMismatchError) as caught:
        acquire(raw_dir, path)
    message = str(caught.value)
    assert str(path) in message
    assert hashlib.sha256(payload).hexdigest() in message
    assert UCI_SHA256 in message
    assert list(raw_dir.iterdir()) == []  # nothing published, no temp file left behind


@pytest.mark.parametrize("member", ["dataset_diabetes/diabetic_data.csv", "diabetic_data.csv"])
def test_csv_gz_and_zip_give_the_same_uncompressed_bytes(
    not_uci: tuple[Path, bytes], member: str
) -> None:
    path, payload = not_uci
    expected = (hashlib.sha256(payload).hexdigest(), 300)
    assert csv_sha256(path) == expected
    assert csv_sha256(gzip_of(path)) == expected
    assert csv_sha256(zip_of(path, member)) == expected


@pytest.mark.parametrize("suffix", [".zip", ".csv.gz"])
def test_tampered_archives_are_rejected_too(
    tmp_path: Path, not_uci: tuple[Path, bytes], suffix: str
) -> None:
    path, _ = not_uci
    offered = (
        zip_of(path, "dataset_diabetes/diabetic_data.csv") if suffix == ".zip" else gzip_of(path)
    )
    with pytest.raises(ChecksumMismatchError, match=UCI_SHA256):
        acquire(tmp_path / "raw", offered)


def test_zip_without_the_csv_is_a_clear_error(tmp_path: Path) -> None:
    archive = tmp_path / "other.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("dataset_diabetes/IDs_mapping.csv", "a,b\n")
    with pytest.raises(AcquisitionError, match=r"no dataset_diabetes/diabetic_data\.csv"):
        acquire(tmp_path / "raw", archive)


def test_a_corrupt_gzip_is_a_clear_error(tmp_path: Path, not_uci: tuple[Path, bytes]) -> None:
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(gzip_of(not_uci[0]).read_bytes()[:500])
    with pytest.raises(AcquisitionError, match="cannot read it"):
        acquire(tmp_path / "raw", broken)
    assert not (tmp_path / "raw" / RAW_FILENAME).exists()


def test_the_env_var_names_the_source_when_no_path_is_given(
    tmp_path: Path, not_uci: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, str(not_uci[0]))
    with pytest.raises(ChecksumMismatchError, match=re.escape(str(not_uci[0]))):
        acquire(tmp_path / "raw", url=f"http://127.0.0.1:{closed_port()}/never-asked.zip")


def test_an_explicit_path_wins_over_the_env_var(
    tmp_path: Path, not_uci: tuple[Path, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "elsewhere.csv"))
    with pytest.raises(ChecksumMismatchError, match=re.escape(str(not_uci[0]))):
        acquire(tmp_path / "raw", not_uci[0])


def test_an_env_var_naming_no_file_is_an_error_not_a_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing.csv.gz"))
    with pytest.raises(AcquisitionError, match=r"no such file \(named by \$READMIT_RAW_DATA\)"):
        acquire(tmp_path / "raw")
    assert not (tmp_path / "raw" / RAW_FILENAME).exists()


def test_unreachable_uci_falls_through_to_synthetic_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{closed_port()}/diabetes.zip"
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="readmit_kedro"):
        result = acquire(tmp_path / "raw", url=url, seed=5, fallback_rows=300)
    assert time.monotonic() - started < 10  # a refused connection fails fast
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "FALLING BACK TO SYNTHETIC" in r.getMessage() and url in r.getMessage() for r in warnings
    )
    sidecar = json.loads((tmp_path / "raw" / SIDECAR_FILENAME).read_text())
    assert sidecar == result.sidecar
    assert sidecar["data_source"] == "synthetic"
    assert sidecar["origin"] == "synthetic:seed=5,rows=300"
    assert sidecar["rows"] == 300
    assert (sidecar["sha256_uncompressed"], 300) == csv_sha256(tmp_path / "raw" / RAW_FILENAME)
    assert sidecar["acquired_at"].endswith("+00:00")


def test_a_download_that_is_not_a_zip_falls_through_to_synthetic(
    tmp_path: Path, web_root: tuple[Path, str], caplog: pytest.LogCaptureFixture
) -> None:
    folder, base = web_root
    (folder / "page.zip").write_text("<html>maintenance</html>")
    with caplog.at_level(logging.WARNING, logger="readmit_kedro"):
        result = acquire(tmp_path / "raw", url=f"{base}/page.zip", fallback_rows=200)
    assert result.sidecar["data_source"] == "synthetic"
    assert "not a zip archive" in caplog.text
    assert {p.name for p in (tmp_path / "raw").iterdir()} == {RAW_FILENAME, SIDECAR_FILENAME}


def test_a_downloaded_archive_with_the_wrong_csv_is_an_error_not_a_fallback(
    tmp_path: Path, web_root: tuple[Path, str], not_uci: tuple[Path, bytes]
) -> None:
    folder, base = web_root
    shutil.copy(zip_of(not_uci[0], "diabetic_data.csv"), folder / "uci.zip")
    with pytest.raises(ChecksumMismatchError, match=UCI_SHA256):
        acquire(tmp_path / "raw", url=f"{base}/uci.zip", fallback_rows=200)
    assert list((tmp_path / "raw").iterdir()) == []  # neither synthetic data nor the download


def test_synthetic_acquisition_is_idempotent(tmp_path: Path) -> None:
    raw = tmp_path / "raw" / RAW_FILENAME
    first = acquire(tmp_path / "raw", synthetic_rows=400, seed=1)
    stamp, content = raw.stat().st_mtime_ns, raw.read_bytes()
    again = acquire(tmp_path / "raw", synthetic_rows=400, seed=1)
    assert first.changed and not again.changed
    assert again.sidecar == first.sidecar
    assert raw.stat().st_mtime_ns == stamp and raw.read_bytes() == content
    other = acquire(tmp_path / "raw", synthetic_rows=400, seed=2)
    assert other.changed and other.sidecar["origin"] == "synthetic:seed=2,rows=400"
    assert raw.read_bytes() != content


def test_source_and_synthetic_rows_together_are_refused(
    tmp_path: Path, not_uci: tuple[Path, bytes]
) -> None:
    with pytest.raises(AcquisitionError, match="not both"):
        acquire(tmp_path / "raw", not_uci[0], synthetic_rows=10)


# --------------------------------------------------------------------------------------------------
# The real file (READMIT_RAW_DATA): accepted in every form, stored once, tampering caught.


def uncompressed_real(real_data_path: Path, tmp_path: Path) -> Path:
    target = tmp_path / "real" / "diabetic_data.csv"
    target.parent.mkdir(exist_ok=True)
    with gzip.open(real_data_path, "rb") as src, target.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return target


@pytest.mark.real_data
def test_the_real_file_is_accepted_and_stored_once(real_data_path: Path, tmp_path: Path) -> None:
    raw_dir = tmp_path / "raw"
    result = acquire(raw_dir, real_data_path)
    assert result.changed
    assert result.sidecar["data_source"] == "uci"
    assert result.sidecar["rows"] == 101_766
    assert result.sidecar["origin"] == str(real_data_path.resolve())
    with gzip.open(raw_dir / RAW_FILENAME, "rb") as stored:
        assert hashlib.sha256(stored.read()).hexdigest() == UCI_SHA256
    stamp = (raw_dir / RAW_FILENAME).stat().st_mtime_ns
    again = acquire(raw_dir, url=f"http://127.0.0.1:{closed_port()}/x.zip")  # no source needed
    assert not again.changed and again.sidecar == result.sidecar
    assert (raw_dir / RAW_FILENAME).stat().st_mtime_ns == stamp


@pytest.mark.real_data
@pytest.mark.parametrize("form", ["csv", "zip"])
def test_the_real_file_is_accepted_as_csv_and_zip(
    real_data_path: Path, tmp_path: Path, form: str
) -> None:
    csv_path = uncompressed_real(real_data_path, tmp_path)
    offered = csv_path if form == "csv" else zip_of(csv_path, "dataset_diabetes/diabetic_data.csv")
    result = acquire(tmp_path / "raw", offered)
    assert result.sidecar["sha256_uncompressed"] == UCI_SHA256
    assert result.sidecar["rows"] == 101_766


@pytest.mark.real_data
def test_the_real_file_via_the_env_var_and_via_a_download(
    real_data_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    web_root: tuple[Path, str],
) -> None:
    monkeypatch.setenv(ENV_VAR, str(real_data_path))
    from_env = acquire(tmp_path / "env", url=f"http://127.0.0.1:{closed_port()}/x.zip")
    assert from_env.sidecar["data_source"] == "uci"
    assert from_env.sidecar["origin"] == str(real_data_path.resolve())
    monkeypatch.delenv(ENV_VAR)
    folder, base = web_root
    zip_of(
        uncompressed_real(real_data_path, tmp_path), "dataset_diabetes/diabetic_data.csv"
    ).rename(folder / "uci.zip")
    downloaded = acquire(tmp_path / "web", url=f"{base}/uci.zip")
    assert downloaded.sidecar["data_source"] == "uci"
    assert downloaded.sidecar["origin"] == f"{base}/uci.zip"
    assert not list((tmp_path / "web").glob(".uci-download*"))


@pytest.mark.real_data
def test_a_tampered_real_file_is_rejected(real_data_path: Path, tmp_path: Path) -> None:
    csv_path = uncompressed_real(real_data_path, tmp_path)
    content = bytearray(csv_path.read_bytes())
    content[5_000_000] = ord("7") if content[5_000_000] != ord("7") else ord("8")
    csv_path.write_bytes(bytes(content))
    tampered = hashlib.sha256(content).hexdigest()
    with pytest.raises(ChecksumMismatchError) as caught:
        acquire(tmp_path / "raw", csv_path)
    assert str(csv_path) in str(caught.value)
    assert tampered in str(caught.value) and UCI_SHA256 in str(caught.value)
    assert not (tmp_path / "raw" / RAW_FILENAME).exists()
