"""Small landing extracts built row by row, so each test states exactly what it feeds the pipeline."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from readmit_kedro.io.extracts import IdMappingDataset, LandingExtract
from readmit_kedro.pipelines.data_processing.bronze import ingest_extracts
from readmit_kedro.pipelines.data_processing.silver import build_silver
from readmit_kedro.schema import DRUG_COLUMNS, LANDING_COLUMNS

VALID_ROW = {
    "encounter_id": "1000", "patient_nbr": "77", "race": "Caucasian", "gender": "Female",
    "age": "[70-80)", "weight": "?", "admission_type_id": "1", "discharge_disposition_id": "1",
    "admission_source_id": "7", "time_in_hospital": "3", "payer_code": "MC",
    "medical_specialty": "?", "num_lab_procedures": "41", "num_procedures": "0",
    "num_medications": "11", "number_outpatient": "0", "number_emergency": "0",
    "number_inpatient": "1", "diag_1": "428", "diag_2": "250.01", "diag_3": "V45",
    "number_diagnoses": "9", "max_glu_serum": "None", "A1Cresult": ">8",
    **dict.fromkeys(DRUG_COLUMNS, "No"),
    "insulin": "Up", "metformin": "Steady", "change": "Ch", "diabetesMed": "Yes",
    "readmitted": "<30", "admission_date": "1999-01-15",
}  # fmt: skip


def make_rows(*overrides: dict[str, str]) -> pd.DataFrame:
    """Landing rows: the valid template with per-row overrides, columns in landing order."""
    return pd.DataFrame([{**VALID_ROW, **o} for o in overrides])[list(LANDING_COLUMNS)]


def make_extract(name: str, frame: pd.DataFrame) -> LandingExtract:
    payload = frame.to_csv(index=False).encode()
    return LandingExtract(name, hashlib.sha256(payload).hexdigest(), frame)


def make_landing(**extracts: pd.DataFrame) -> dict:
    """The landing partitions as Kedro hands them to ingest_extracts: name -> lazy loader."""
    loaded = {name: make_extract(name, frame) for name, frame in extracts.items()}
    return {name: (lambda e=extract: e) for name, extract in loaded.items()}


def hashes(landing: dict) -> dict[str, str]:
    """What ``landing_hashes`` gives for these partitions: name -> sha256 of the file."""
    return {name: load().sha256 for name, load in landing.items()}


def held(landing: dict, *names: str) -> dict[str, dict[str, str]]:
    """A bronze inventory that already holds ``names`` of ``landing``, as landed."""
    return {
        n: {"sha256": landing[n]().sha256, "source_file": landing[n]().source_file} for n in names
    }


def ingest(landing: dict, run_date: str, *already: str, source=None):
    """ingest_extracts with the landing's own hashes and a bronze that holds ``already``; the
    bronze copies as the catalog saves them (each lazy writer called)."""
    source = source or {"data_source": "synthetic"}
    bronze, summary = ingest_extracts(
        landing, hashes(landing), held(landing, *already), source, run_date
    )
    return written(bronze), summary


def written(bronze: dict) -> dict[str, pd.DataFrame]:
    """What PartitionedDataset saves of ingest_extracts' lazy writers: name -> bronze frame."""
    return {name: write() for name, write in bronze.items()}


def make_silver(spark, id_mapping, params, *overrides, run_date="2008-12-31"):
    """Silver (table, quarantine, report) of one extract of landing rows, through bronze."""
    landing = make_landing(**{"diabetic_data_1999-01": make_rows(*overrides)})
    bronze, _ = ingest(landing, run_date)
    frame = spark.createDataFrame(pd.concat(bronze.values(), ignore_index=True))
    return build_silver(frame, id_mapping, run_date, params["data_quality"])


@pytest.fixture(scope="session")
def id_mapping() -> pd.DataFrame:
    return IdMappingDataset(filepath="package://readmit_kedro/resources/IDs_mapping.csv").load()


@pytest.fixture(scope="session")
def params() -> dict:
    """The project's real base parameters, so tests exercise the shipped rules."""
    from kedro.config import OmegaConfigLoader

    conf = Path(__file__).resolve().parents[3] / "conf"
    return OmegaConfigLoader(str(conf), base_env="base", default_run_env="base")["parameters"]
