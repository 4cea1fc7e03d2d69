"""The replay empties the pipelines' state before it starts, and nothing outside the project."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from readmit_kedro.commands.replay import ReplayStateError, clear_state

ROOTS = {
    "data_root": "data",
    "landing_root": "data/01_raw/landing",
    "registry_root": "data/06_models/registry",
    "predictions_root": "data/07_model_output",
    "reports_root": "data/08_reporting",
}
KEEP = Path("data/01_raw")


def _write(root: Path, *paths: str) -> None:
    for path in paths:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text("x")


def test_everything_but_the_raw_download_and_the_layer_folders_goes(tmp_path):
    kept = [
        "data/01_raw/.gitkeep", "data/01_raw/diabetic_data.csv.gz",
        "data/01_raw/diabetic_data.source.json", "data/06_models/.gitkeep",
        "data/07_model_output/.gitkeep", "data/08_reporting/.gitkeep", "conf/base/x.yml",
    ]  # fmt: skip
    gone = [
        "data/01_raw/landing/extract_2008-01.csv", "data/06_models/registry/xgboost/latest",
        "data/07_model_output/prediction_store.parquet", "data/08_reporting/signals/a.json",
    ]  # fmt: skip
    _write(tmp_path, *kept, *gone)
    removed = clear_state(tmp_path, ROOTS, keep=KEEP)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in removed) == [
        "data/01_raw/landing/extract_2008-01.csv", "data/06_models/registry",
        "data/07_model_output/prediction_store.parquet", "data/08_reporting/signals",
    ]  # fmt: skip
    assert all((tmp_path / path).exists() for path in kept)
    assert not any((tmp_path / path).exists() for path in gone)
    assert clear_state(tmp_path, ROOTS, keep=KEEP) == []  # and again: nothing left to remove


@pytest.mark.parametrize(
    ("key", "value"),
    [("registry_root", "s3://bucket/registry"), ("data_root", "."), ("reports_root", "../x")],
)
def test_state_outside_the_project_is_refused_untouched(tmp_path, key, value):
    _write(tmp_path, "data/07_model_output/prediction_store.parquet")
    with pytest.raises(ReplayStateError, match=rf"globals {key} is '{re.escape(value)}'"):
        clear_state(tmp_path, {**ROOTS, key: value}, keep=KEEP)
    assert (tmp_path / "data/07_model_output/prediction_store.parquet").exists()
