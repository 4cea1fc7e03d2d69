"""The inference pipeline run through Kedro in a project copy, inputs written where the catalog says."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from kedro.io import DatasetError

from readmit_kedro.io.model_store import ModelNotFoundError
from readmit_kedro.io.published import PandasPublishedTable
from readmit_kedro.io.registry import ModelIntegrityError, ModelRegistry
from readmit_kedro.schema import PREDICTION_COLUMNS

from .conftest import register

pytestmark = pytest.mark.e2e

RUN_DATE = "2008-06-30"


def _root_cause(error: BaseException) -> BaseException:
    """What the dataset raised, under Kedro's DatasetError wrappers (the cache wraps once more)."""
    while error.__cause__ is not None:
        error = error.__cause__
    return error


def write_gold(project: Path, features: pd.DataFrame) -> None:
    """Gold features as data_processing publishes them."""
    PandasPublishedTable(
        filepath=str(project / "data" / "04_feature" / "gold_features"),
        partition_by=["admission_year"],
    ).save(features)


def project_registry(project: Path) -> ModelRegistry:
    return ModelRegistry(str(project / "data" / "06_models" / "registry"))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_inference_end_to_end(kedro_project: Path, run_pipeline, gold, champion_bundle) -> None:
    admitted = gold[0]["admission_date"]
    june = gold[0][admitted <= pd.Timestamp(RUN_DATE)]
    write_gold(kedro_project, june)
    register(project_registry(kedro_project), "xgboost", champion_bundle, promote=True)
    output = kedro_project / "data" / "07_model_output"
    dated = output / "predictions" / f"predictions_{RUN_DATE}.parquet"
    store = output / "prediction_store.parquet"
    signal = kedro_project / "data" / "08_reporting" / "signals" / "inference.json"

    run_pipeline(kedro_project, "inference", run_date=RUN_DATE)
    rows = pd.read_parquet(dated)
    assert tuple(rows.columns) == PREDICTION_COLUMNS
    assert sorted(rows["encounter_id"]) == sorted(june["encounter_id"])
    assert rows["probability_lower"].notna().all()
    assert json.loads(signal.read_text()) == {
        "run_date": RUN_DATE, "rows_scored": len(rows), "new_predictions": True, "replaced_rows": 0,
        "store_rows": len(rows),
    }  # fmt: skip
    summary = json.loads(
        (kedro_project / "data" / "08_reporting" / "inference" / "run_summary.json").read_text()
    )
    assert summary["rows_scored"] == len(rows) and summary["intervals"]["status"] == "written"
    # monitoring reads the same file through its own catalog entry
    pd.testing.assert_frame_equal(load_prediction_store(kedro_project), rows)

    first = digest(dated), digest(store)
    run_pipeline(kedro_project, "inference", run_date=RUN_DATE)  # an Airflow retry
    assert (digest(dated), digest(store)) == first

    run_pipeline(kedro_project, "inference", run_date="2008-07-01")  # next day, same gold
    assert json.loads(signal.read_text())["rows_scored"] == 0
    assert pd.read_parquet(output / "predictions" / "predictions_2008-07-01.parquet").empty
    assert digest(store) == first[1]

    july = gold[0][admitted <= pd.Timestamp("2008-07-31")]
    write_gold(kedro_project, july)  # data_processing published a month more
    run_pipeline(kedro_project, "inference", run_date="2008-07-31")
    assert json.loads(signal.read_text())["rows_scored"] == len(july) - len(june) > 0
    final = load_prediction_store(kedro_project)
    assert sorted(final["encounter_id"]) == sorted(july["encounter_id"])


def load_prediction_store(project: Path) -> pd.DataFrame:
    from kedro.framework.session import KedroSession

    with KedroSession.create(project_path=project) as session:
        return session.load_context().catalog.load("prediction_store")


def test_a_tampered_champion_is_refused_by_the_pipeline(
    kedro_project: Path, run_pipeline, gold, champion_bundle
) -> None:
    write_gold(kedro_project, gold[0])
    registry = project_registry(kedro_project)
    version = register(registry, "xgboost", champion_bundle, promote=True)
    bundle = kedro_project / "data" / "06_models" / "registry" / "xgboost" / version / "model.pkl"
    bundle.write_bytes(bundle.read_bytes() + b"\x00")  # one byte appended: a different file
    with pytest.raises(DatasetError, match="refusing to unpickle") as error:
        run_pipeline(kedro_project, "inference", run_date=RUN_DATE)
    assert isinstance(_root_cause(error.value), ModelIntegrityError)
    assert not (kedro_project / "data" / "07_model_output").exists()


def test_no_champion_stops_the_pipeline_naming_the_registry(
    kedro_project: Path, run_pipeline, gold
) -> None:
    write_gold(kedro_project, gold[0])
    with pytest.raises(
        DatasetError, match=r"no champion model in the registry \S*data/06_models/registry"
    ) as error:
        run_pipeline(kedro_project, "inference", run_date=RUN_DATE)
    assert isinstance(_root_cause(error.value), ModelNotFoundError)


def test_a_version_pinned_on_the_command_line_replaces_the_champion(
    kedro_project: Path, run_pipeline, gold, champion_bundle, bare_bundle
) -> None:
    """``--params inference_config.model_algorithm=...,inference_config.model_version=...``."""
    write_gold(kedro_project, gold[0])
    registry = project_registry(kedro_project)
    register(registry, "xgboost", champion_bundle, promote=True)
    pinned = register(registry, "logistic_regression", bare_bundle, promote=False)
    pin = {"model_algorithm": "logistic_regression", "model_version": pinned}
    run_pipeline(kedro_project, "inference", run_date=RUN_DATE, inference_config=pin)
    output = kedro_project / "data" / "07_model_output" / "predictions"
    rows = pd.read_parquet(output / f"predictions_{RUN_DATE}.parquet")
    assert set(rows["model_algorithm"]) == {"logistic_regression"}
    assert set(rows["model_version"]) == {pinned}
    assert rows["probability_lower"].isna().all()  # that bundle has no calibrator
