"""The data_processing pipeline run through Kedro on small landing extracts in a project copy."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pandas as pd
import pytest

from readmit_kedro.io.published import PandasPublishedTable
from readmit_kedro.run_context import ConfigError

from .conftest import make_rows

pytestmark = pytest.mark.e2e


def _land(project: Path, month: str, frame: pd.DataFrame) -> Path:
    landing = project / "data" / "01_raw" / "landing"
    landing.mkdir(parents=True, exist_ok=True)
    (landing / "_SOURCE.json").write_text(json.dumps({"data_source": "synthetic"}))
    path = landing / f"diabetic_data_{month}.csv.gz"
    path.write_bytes(gzip.compress(frame.to_csv(index=False).encode()))
    return path


def _month(month: str, first_id: int, n: int = 4) -> pd.DataFrame:
    return make_rows(
        *(
            {
                "encounter_id": str(first_id + i),
                "patient_nbr": str(100 + i % 3),
                "admission_date": f"{month}-{10 + i:02d}",
            }
            for i in range(n)
        )
    )


def _gold(project: Path, table: str) -> pd.DataFrame:
    frame = PandasPublishedTable(filepath=str(project / "data/04_feature" / f"gold_{table}")).load()
    return frame.sort_values("encounter_id").reset_index(drop=True)


def _read_json(project: Path, relative: str) -> dict:
    return json.loads((project / relative).read_text())


def test_incremental_and_idempotent(kedro_project, run_pipeline, spark):
    _land(kedro_project, "1999-01", _month("1999-01", 1))
    _land(kedro_project, "1999-02", _month("1999-02", 11))
    run_pipeline(kedro_project, "data_processing", run_date="1999-02-28")
    first = _gold(kedro_project, "features")
    assert first["encounter_id"].tolist() == [1, 2, 3, 4, 11, 12, 13, 14]

    run_pipeline(kedro_project, "data_processing", run_date="1999-02-28")  # an Airflow retry
    pd.testing.assert_frame_equal(_gold(kedro_project, "features"), first)
    summary = _read_json(kedro_project, "data/02_intermediate/bronze_ingestion_summary.json")
    assert summary["new_extracts"] == [] and summary["new_rows"] == 0

    _land(kedro_project, "1999-03", _month("1999-03", 21))
    run_pipeline(kedro_project, "data_processing", run_date="1999-03-31")
    summary = _read_json(kedro_project, "data/02_intermediate/bronze_ingestion_summary.json")
    assert summary["new_extracts"] == ["diabetic_data_1999-03"]
    gold = _gold(kedro_project, "features")
    assert len(gold) == 12 and gold["encounter_id"].is_unique
    labels = _gold(kedro_project, "labels")
    assert labels["encounter_id"].tolist() == gold["encounter_id"].tolist()
    signal = _read_json(kedro_project, "data/08_reporting/signals/new_data.json")
    assert signal["new_rows"] == 4 and signal["train_recommended"] is False


def test_quarantine_and_duplicates_are_counted(kedro_project, run_pipeline, spark):
    frame = make_rows(
        {"encounter_id": "1"},
        {"encounter_id": "1"},
        {"encounter_id": "2", "num_medications": "eleven"},
        {"encounter_id": "3", "time_in_hospital": "0"},
    )
    _land(kedro_project, "1999-01", frame)
    run_pipeline(kedro_project, "data_processing", run_date="1999-01-31")
    report = _read_json(kedro_project, "data/08_reporting/data_quality/data_quality_report.json")
    assert report["quarantined_by_rule"] == {
        "impossible_time_in_hospital": 1,
        "unparseable_number": 1,
    }
    assert report["duplicates_removed"] == 1 and report["silver_rows"] == 1
    quarantine = PandasPublishedTable(
        filepath=str(kedro_project / "data/03_primary/silver_quarantine")
    ).load()
    assert sorted(quarantine["_dq_rule"]) == ["impossible_time_in_hospital", "unparseable_number"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:60]), "cannot read the extract"),
        (lambda p: p.write_bytes(b""), "the extract is empty"),
        (
            lambda p: p.write_bytes(
                gzip.compress(_month("1999-02", 11).drop(columns="diag_2").to_csv().encode())
            ),
            r"\['diag_2'\] missing",
        ),
    ],
    ids=["truncated-gzip", "empty-file", "missing-column"],
)
def test_bad_extract_fails_clearly_and_gold_stays(
    kedro_project, run_pipeline, spark, damage, message
):
    _land(kedro_project, "1999-01", _month("1999-01", 1))
    run_pipeline(kedro_project, "data_processing", run_date="1999-01-31")
    before = _gold(kedro_project, "features")
    pointer = (kedro_project / "data/04_feature/gold_features/_LATEST").read_text()

    damage(_land(kedro_project, "1999-02", _month("1999-02", 11)))
    with pytest.raises(Exception, match=message) as failure:
        run_pipeline(kedro_project, "data_processing", run_date="1999-02-28")
    assert "diabetic_data_1999-02" in str(failure.value)
    assert (kedro_project / "data/04_feature/gold_features/_LATEST").read_text() == pointer
    pd.testing.assert_frame_equal(_gold(kedro_project, "features"), before)
    bronze = sorted(p.name for p in (kedro_project / "data/02_intermediate/bronze").iterdir())
    assert bronze == ["diabetic_data_1999-01.parquet"]


def test_rerun_after_a_late_extract_sees_it(kedro_project, run_pipeline, spark):
    """A re-run of a date in the same Spark session (a notebook, the replay) reads bronze afresh.

    Spark matches cached plans by table path, not by the files under it: a cache kept from the
    first run would hide the late extract from silver and gold.
    """
    _land(kedro_project, "1999-01", _month("1999-01", 1))
    run_pipeline(kedro_project, "data_processing", run_date="1999-01-31")
    _land(kedro_project, "1999-01_late", _month("1999-01", 31))
    run_pipeline(kedro_project, "data_processing", run_date="1999-01-31")
    assert _gold(kedro_project, "features")["encounter_id"].tolist() == [1, 2, 3, 4, 31, 32, 33, 34]
    quality = _read_json(kedro_project, "data/08_reporting/data_quality/data_quality_report.json")
    assert quality["bronze_rows"] == 8


def test_a_bad_parameter_stops_the_run_named_before_silver(kedro_project, run_pipeline, spark):
    """An env's typo in ``data_quality`` fails build_silver with the full key; gold is not built."""
    _land(kedro_project, "1999-01", _month("1999-01", 1))
    (kedro_project / "conf/local/parameters.yml").write_text(
        "data_quality:\n  ordering_checks:\n    min_rows: -1\n"
    )
    with pytest.raises(
        ConfigError, match=r"data_quality\.ordering_checks\.min_rows must be an int >= 1, got -1"
    ):
        run_pipeline(kedro_project, "data_processing", run_date="1999-01-31")
    assert not (kedro_project / "data/03_primary/silver_encounters").exists()
    assert not (kedro_project / "data/04_feature/gold_features").exists()
