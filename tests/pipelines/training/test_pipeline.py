"""The whole training pipeline on small gold-like data: dev settings, SequentialRunner, the
project's own training catalog (paths under a temporary folder) and gold held in memory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from kedro.runner import SequentialRunner
from sklearn.metrics import roc_auc_score

from readmit_kedro.io.registry import ModelRegistry
from readmit_kedro.model.calibration import uncalibrated
from readmit_kedro.model.explain import TreeExplainer
from readmit_kedro.pipelines.training import create_pipeline
from readmit_kedro.pipelines.training.checks import UnchangedTrainingInputsError
from readmit_kedro.pipelines.training.modeling import ESTIMATORS
from readmit_kedro.pipelines.training.preprocessing import join_gold, split_windows


@pytest.mark.slow
def test_training_pipeline_registers_three_models_and_a_champion(
    training_catalog, small_gold, dev_params
):
    catalog = training_catalog()
    SequentialRunner().run(create_pipeline(), catalog)

    registry = ModelRegistry("data/06_models/registry")
    assert registry.algorithms() == sorted(ESTIMATORS)
    report = catalog.load("champion_report")
    champion = registry.champion()
    assert report["promoted"] and report["reason"].startswith("first champion")
    assert (champion["algorithm"], champion["version"]) == (
        report["decision"]["algorithm"],
        report["decision"]["version"],
    )
    best = max(report["candidates"].values(), key=lambda c: c["test"]["roc_auc"])
    assert best["version"] == champion["version"]

    # One snapshot, published behind its pointer, shared by all three models.
    preprocessed = Path("data/05_model_input/preprocessed")
    version = (preprocessed / "latest.txt").read_text()
    assert sorted(p.name for p in (preprocessed / version).iterdir()) == [
        "metadata.json",
        "oot_processed.parquet",
        "preprocessor.pkl",
        "test_processed.parquet",
        "train_processed.parquet",
    ]
    metadata = json.loads((preprocessed / version / "metadata.json").read_text())
    assert set(metadata["shared_patients"]) == {"train&test", "train&oot", "test&oot"}
    assert {r["training_data_version"] for r in map(registry.record, ESTIMATORS)} == {version}

    # The registered bundle scores raw gold rows exactly as evaluation scored processed rows.
    loaded = registry.load_champion()
    plan = catalog.load("training_plan")
    test = split_windows(join_gold(*small_gold), plan)["test"]
    auc = catalog.load(f"{champion['algorithm']}.evaluation")["test"]["roc_auc"]
    assert loaded.model.feature_columns == metadata["input_features"]
    calibrated = loaded.model.predict_proba(test)[:, 1]  # what inference emits
    assert np.isclose(roc_auc_score(test["readmitted_30d"], calibrated), auc, atol=1e-12)
    raw = loaded.model.model.predict_proba(test)[:, 1]  # monotone map: ranking (almost) the same
    assert abs(roc_auc_score(test["readmitted_30d"], raw) - auc) < 0.01
    assert auc > 0.6  # the synthetic signal is learnable even from a few thousand rows

    # The same rows and parameters again: refused before preprocessing, the registry untouched.
    with pytest.raises(UnchangedTrainingInputsError, match="nothing new to train on"):
        SequentialRunner().run(create_pipeline(), training_catalog())
    assert all(len(registry.list_versions(a)) == 1 for a in ESTIMATORS)
    assert (preprocessed / "latest.txt").read_text() == version

    # A parameter that changes no model: the run re-scores the champion and replaces it on a tie.
    requirements = {
        **dev_params["training_config"]["data_requirements"],
        "min_rows_per_window": 199,
    }
    SequentialRunner().run(
        create_pipeline(),
        training_catalog(
            training_config={**dev_params["training_config"], "data_requirements": requirements}
        ),
    )
    scores = json.loads(Path("data/08_reporting/training/current_champion_scores.json").read_text())
    assert scores["champion"]["version"] == champion["version"]
    assert np.isclose(scores["test"]["roc_auc"], auc, atol=1e-12)
    history = registry.history()
    assert len(history) == 2 and history[1]["previous"] == history[0]["history_id"]
    assert all(len(registry.list_versions(a)) == 2 for a in ESTIMATORS)


@pytest.mark.slow
def test_an_external_memory_xgboost_is_evaluated_registered_and_scored_unchanged(
    training_catalog, small_gold, dev_params
):
    """Through the project's catalog: preprocessing reads gold a partition at a time, the refit
    streams the stored snapshot, and the registered bundle scores raw gold rows and explains them
    with TreeSHAP like an in-memory one."""
    external = {"enabled": True, "max_in_memory_rows": 300, "batch_rows": 500}
    config = {**dev_params["training_config"], "external_memory": external}
    catalog = training_catalog(training_config=config)
    SequentialRunner().run(create_pipeline().to_nodes("xgboost.register_model"), catalog)

    # Past max_in_memory_rows the snapshot was made in batches, the preprocessor fitted on a sample.
    snapshot = catalog.load("preprocessed_training_data")
    assert 0 < snapshot.metadata["preprocessor_fit_rows"] < 500 < snapshot.rows("train")
    report = catalog.load("xgboost.search_report")
    assert report["training_mode"] == "external" and report["refit_rows"] > 1000
    assert report["search_rows"] < 500  # the search ran on a patient subsample
    loaded = ModelRegistry("data/06_models/registry").load("xgboost")
    test = split_windows(join_gold(*small_gold), catalog.load("training_plan"))["test"]
    auc = catalog.load("xgboost.evaluation")["test"]["roc_auc"]
    calibrated = loaded.predict_proba(test)[:, 1]
    assert np.isclose(roc_auc_score(test["readmitted_30d"], calibrated), auc, atol=1e-12)
    explainer = TreeExplainer.of(loaded)
    encoded = uncalibrated(loaded)[:-1].transform(test)
    np.testing.assert_allclose(
        explainer.contributions(encoded).sum(axis=1), explainer.raw_score(encoded), atol=1e-4
    )
