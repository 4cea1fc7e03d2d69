"""Landing: dates from encounter order, one verbatim file per month, `until`, idempotency."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from readmit_kedro.landing import RAW_FILENAME, SIDECAR_FILENAME
from readmit_kedro.landing.acquire import acquire
from readmit_kedro.landing.monthly import (
    SOURCE_FILENAME,
    LandingError,
    admission_dates,
    extract_name,
    land,
)
from readmit_kedro.landing.synthetic import synthetic_frame
from readmit_kedro.schema import LANDING_COLUMNS, RAW_COLUMNS
from tests.data.conftest import read_landed, write_raw


def synthetic_raw(tmp_path: Path, rows: int, seed: int = 1) -> Path:
    return acquire(tmp_path / "raw", synthetic_rows=rows, seed=seed).path


def month_files(root: Path) -> list[str]:
    return sorted(p.name for p in root.glob("diabetic_data_*.csv.gz"))


def test_dates_follow_the_rank_formula_whatever_the_row_order() -> None:
    ids = np.array([50, 10, 40, 20, 30, 20, 60])  # unsorted, with a tie (stable: first 20 first)
    dates = admission_dates(ids)
    rank = np.array([5, 0, 4, 1, 3, 2, 6])  # positions after a stable sort by encounter_id
    expected = np.datetime64("1999-01-01") + (rank * 3653 // 7).astype("timedelta64[D]")
    np.testing.assert_array_equal(dates, expected)
    assert str(admission_dates(np.array([1]))[0]) == "1999-01-01"


def test_a_full_landing_spans_the_ten_years_evenly(tmp_path: Path) -> None:
    raw = synthetic_raw(tmp_path, rows=4_000)
    result = land(raw, tmp_path / "landing")
    files = month_files(tmp_path / "landing")
    assert len(files) == 120 and files[0] == extract_name("1999-01")
    assert files[-1] == extract_name("2008-12")
    assert result.written[0] == "1999-01" and len(result.written) == 120
    assert result.rows_written == 4_000

    landed = read_landed(tmp_path / "landing")
    assert tuple(landed.columns) == LANDING_COLUMNS
    assert landed["admission_date"].iloc[0] == "1999-01-01"
    assert landed["admission_date"].iloc[-1] == "2008-12-31"
    ids = landed["encounter_id"].astype(np.int64)
    assert ids.is_monotonic_increasing
    assert landed["admission_date"].is_monotonic_increasing  # ISO strings sort as dates
    per_day = landed["admission_date"].value_counts()
    assert len(per_day) == 3653 and set(per_day) <= {1, 2}  # 4000 rows over 3653 days: uniform


def test_values_are_landed_verbatim(tmp_path: Path) -> None:
    raw = synthetic_raw(tmp_path, rows=2_500)
    land(raw, tmp_path / "landing")
    landed = read_landed(tmp_path / "landing")
    original = pd.read_csv(raw, dtype=str, keep_default_na=False, na_filter=False)
    pd.testing.assert_frame_equal(landed[list(RAW_COLUMNS)], original, check_dtype=False)
    assert (landed["weight"] == "?").any() and (landed["max_glu_serum"] == "None").any()


def test_rows_out_of_order_are_landed_in_encounter_order(tmp_path: Path) -> None:
    frame = synthetic_frame(1_200, seed=4)
    shuffled = frame.sample(frac=1.0, random_state=0)
    raw = write_raw(tmp_path / "raw", shuffled)
    land(raw, tmp_path / "landing")  # months complete out of order
    landed = read_landed(tmp_path / "landing")
    pd.testing.assert_frame_equal(landed[list(RAW_COLUMNS)], frame, check_dtype=False)
    expected = admission_dates(frame["encounter_id"].astype(np.int64).to_numpy())
    assert list(landed["admission_date"]) == list(np.datetime_as_string(expected, unit="D"))


def test_until_lands_history_and_a_rerun_changes_nothing(tmp_path: Path) -> None:
    raw = synthetic_raw(tmp_path, rows=3_000)
    root = tmp_path / "landing"
    first = land(raw, root, until="2000-02")
    assert len(first.written) == 14 and first.written[-1] == "2000-02" and not first.skipped
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.iterdir()}

    again = land(raw, root, until="2000-02")
    assert again.written == () and again.rows_written == 0 and len(again.skipped) == 14
    following = land(raw, root, until="2000-03")
    assert following.written == ("2000-03",) and len(following.skipped) == 14

    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in root.iterdir()}
    assert set(after) - set(before) == {extract_name("2000-03")}
    assert all(after[name] == before[name] for name in before)  # same bytes, same mtime
    assert not list(root.glob(".*"))  # no temp files left


def test_source_record_is_copied_and_other_sources_are_refused(tmp_path: Path) -> None:
    raw = synthetic_raw(tmp_path, rows=500, seed=1)
    root = tmp_path / "landing"
    land(raw, root, until="1999-03")
    sidecar = json.loads((raw.parent / SIDECAR_FILENAME).read_text())
    assert json.loads((root / SOURCE_FILENAME).read_text()) == sidecar
    assert sidecar["data_source"] == "synthetic"

    other = acquire(tmp_path / "other", synthetic_rows=500, seed=2).path
    with pytest.raises(LandingError, match="holds extracts of another raw file"):
        land(other, root, until="1999-04")
    assert month_files(root)[-1] == extract_name("1999-03")


def test_months_without_encounters_get_no_file(tmp_path: Path) -> None:
    """Bronze rejects header-only extracts, so a tiny raw file lands only its non-empty months."""
    raw = synthetic_raw(tmp_path, rows=40)
    result = land(raw, tmp_path / "landing")
    files = sorted((tmp_path / "landing").glob("diabetic_data_*.csv.gz"))
    assert len(files) == len(result.written) <= 40
    assert len(result.written) + len(result.empty) == 120
    sizes = [len(pd.read_csv(f, dtype=str, keep_default_na=False)) for f in files]
    assert sum(sizes) == 40 and min(sizes) >= 1
    with gzip.open(files[0], "rt") as handle:
        assert handle.readline().rstrip("\n").split(",") == list(LANDING_COLUMNS)
    again = land(raw, tmp_path / "landing")
    assert again.written == () and again.empty == result.empty


def test_until_past_the_data_lands_everything(tmp_path: Path) -> None:
    raw = synthetic_raw(tmp_path, rows=300)
    assert len(land(raw, tmp_path / "landing", until="2015-06").written) == 120


@pytest.mark.parametrize(
    ("until", "message"),
    [
        ("2000-13", "must look like YYYY-MM"),
        ("2000/03", "must look like YYYY-MM"),
        ("1998-12", "before the first month of data"),
    ],
)
def test_bad_until_is_refused(tmp_path: Path, until: str, message: str) -> None:
    raw = synthetic_raw(tmp_path, rows=100)
    with pytest.raises(LandingError, match=message):
        land(raw, tmp_path / "landing", until=until)
    assert not (tmp_path / "landing").exists()


def test_missing_raw_or_sidecar_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(LandingError, match="run `readmit data acquire` first"):
        land(tmp_path / "raw" / RAW_FILENAME, tmp_path / "landing")
    raw = synthetic_raw(tmp_path, rows=100)
    (raw.parent / SIDECAR_FILENAME).unlink()
    with pytest.raises(LandingError, match="missing or unreadable"):
        land(raw, tmp_path / "landing")


def test_a_raw_file_with_other_columns_is_refused(tmp_path: Path) -> None:
    frame = synthetic_frame(50, seed=1).rename(columns={"A1Cresult": "a1c"})
    raw = write_raw(tmp_path / "raw", frame)
    with pytest.raises(LandingError, match=r"missing \['A1Cresult'\], unexpected \['a1c'\]"):
        land(raw, tmp_path / "landing")


@pytest.mark.real_data
def test_the_real_file_lands_as_120_months(real_data_path: Path, tmp_path: Path) -> None:
    raw = acquire(tmp_path / "raw", real_data_path).path
    result = land(raw, tmp_path / "landing")
    files = sorted((tmp_path / "landing").glob("diabetic_data_*.csv.gz"))
    assert len(files) == 120 and result.rows_written == 101_766
    assert files[0].name == extract_name("1999-01") and files[-1].name == extract_name("2008-12")
    assert json.loads((tmp_path / "landing" / SOURCE_FILENAME).read_text())["data_source"] == "uci"

    landed: list[str] = []
    for path in files:
        with gzip.open(path, "rt", newline="") as handle:
            assert handle.readline() == ",".join(LANDING_COLUMNS) + "\n"
            landed += handle.read().splitlines()
    assert len(landed) == 101_766
    dates = [line.rsplit(",", 1)[1] for line in landed]
    assert dates[0] == "1999-01-01" and dates[-1] == "2008-12-31" and dates == sorted(dates)
    with gzip.open(real_data_path, "rt", newline="") as handle:
        original = handle.read().split("\r\n")[1:-1]  # CRLF lines; the header dropped
    by_encounter = sorted(original, key=lambda line: int(line.split(",", 1)[0]))  # stable
    assert [line.rsplit(",", 1)[0] for line in landed] == by_encounter  # verbatim, in id order


# A bad row's identifiers: distinctive values that occur nowhere else in the file.
_ENCOUNTER, _PATIENT = "777000111", "888000222"


def _bad_row(frame: pd.DataFrame, how: str) -> pd.DataFrame:
    frame = frame.astype(str)
    frame.loc[10, "patient_nbr"] = _PATIENT
    if how == "letter in encounter_id":
        frame.loc[10, "encounter_id"] = f"X{_ENCOUNTER}"
    elif how == "quoted field":
        frame.loc[10, "encounter_id"] = _ENCOUNTER
        frame.loc[10, "race"] = "Cauca,sian"  # a comma: pandas quotes the field
    elif how == "empty encounter_id":
        frame.loc[10, "payer_code"] = _ENCOUNTER  # the identifier elsewhere in the row
        frame.loc[10, "encounter_id"] = ""
    return frame


@pytest.mark.parametrize("how", ["letter in encounter_id", "quoted field", "empty encounter_id"])
def test_a_bad_row_is_refused_without_putting_patient_data_in_the_error_or_logs(
    tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    raw = write_raw(tmp_path / "raw", _bad_row(synthetic_frame(50, seed=3), how))
    with gzip.open(raw, "rb") as handle:
        row = handle.read().split(b"\r\n")[11]  # header + 10 good rows before it
    assert _PATIENT.encode() in row[:40]
    with caplog.at_level(logging.DEBUG), pytest.raises(LandingError) as error:
        land(raw, tmp_path / "landing")
    message = str(error.value)
    assert "data row 11" in message and "encounter_id" in message
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for identifier in (_ENCOUNTER, _PATIENT, row[:40].decode(), repr(row[:40])):
        assert identifier not in message, f"patient data in the error: {message}"
        assert identifier not in logged, "patient data in the logs"
