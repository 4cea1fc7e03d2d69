"""The `readmit data` commands: defaults relative to the working directory, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from readmit_kedro.commands import cli
from readmit_kedro.landing import ENV_VAR, RAW_FILENAME
from readmit_kedro.landing.acquire import UCI_SHA256
from tests.data.conftest import closed_port


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty project root as the working directory, with no real-data path in the env."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_VAR, raising=False)
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_acquire_then_land_with_the_default_paths(project: Path) -> None:
    result = run("data", "acquire", "--synthetic-rows", "400", "--seed", "2")
    assert result.exit_code == 0, result.output
    assert "synthetic data, 400 rows (stored; origin synthetic:seed=2,rows=400)" in result.output
    assert (project / "data" / "01_raw" / RAW_FILENAME).is_file()

    result = run("data", "land", "--until", "1999-06")
    assert result.exit_code == 0, result.output
    assert "landed 6 month(s) (1999-01..1999-06" in result.output
    landing = project / "data" / "01_raw" / "landing"
    assert len(list(landing.glob("diabetic_data_*.csv.gz"))) == 6

    result = run("data", "land", "--until", "1999-06")
    assert "landed 0 month(s) (none, 0 rows); 6 already there" in result.output
    assert (
        "already present" in run("data", "acquire", "--synthetic-rows", "400", "--seed", "2").output
    )


def test_land_into_another_root(project: Path) -> None:
    run("data", "acquire", "--synthetic-rows", "300", "--raw-dir", "elsewhere")
    result = run("data", "land", "--raw-dir", "elsewhere", "--landing-root", "zone")
    assert result.exit_code == 0, result.output
    assert len(list((project / "zone").glob("diabetic_data_*.csv.gz"))) == 120


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data", "land", "--until", "1999-13"], "Error: until must look like YYYY-MM"),
        (["data", "land"], "no raw file; run `readmit data acquire` first"),
        (["data", "acquire", "--source", "nowhere.csv.gz"], "no such file (named by --source)"),
        (["data", "acquire", "--synthetic-rows", "0"], "Invalid value for '--synthetic-rows'"),
    ],
)
def test_user_errors_are_one_line(project: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output and result.exception.__class__ is SystemExit


def test_a_wrong_source_file_names_both_hashes(project: Path) -> None:
    offered = project / "diabetic_data.csv"
    offered.write_text("encounter_id,patient_nbr\n1,2\n")
    result = CliRunner().invoke(cli, ["data", "acquire", "--source", str(offered)])
    assert result.exit_code == 1
    assert UCI_SHA256 in result.output and str(offered) in result.output


def test_no_real_data_and_no_network_falls_back_to_synthetic(project: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/uci.zip"
    result = run("data", "acquire", "--url", url, "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "synthetic data, 101,766 rows" in result.output


def test_the_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "readmit"
    done = subprocess.run(
        [str(script), "data", "land", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "--until YYYY-MM" in done.stdout
