"""Training past memory: the train window streamed from the snapshot's Parquet into XGBoost."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xgboost
from sklearn.preprocessing import StandardScaler

from readmit_kedro.io.model_store import TrainingSnapshot, TrainingSnapshotDataset
from readmit_kedro.io.registry import ModelIntegrityError
from readmit_kedro.pipelines.training.external_memory import training_mode
from readmit_kedro.pipelines.training.modeling import train_model
from readmit_kedro.schema import TARGET

FEATURES = ["f0", "f1", "f2", "f3"]
MODEL_CONFIG = {"random_state": 3, "cv_folds": 2, "n_iter_search": 2, "n_jobs": 1,
                "halving_factor": 2, "final_rung_fraction": 1.0}  # fmt: skip
XGBOOST = {
    "estimator": "xgboost",
    "params": {"tree_method": "hist", "scale_pos_weight": "balanced", "n_estimators": 40,
               "max_depth": 3, "subsample": 0.8, "verbosity": 0},
    "search_space": {"max_depth": [2, 3]},
}  # fmt: skip


def _window(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    patients = rng.integers(0, n // 3, n)  # ~3 encounters per patient
    X = rng.normal(size=(n, 4)) + rng.normal(size=(n // 3 + 1, 4))[patients]
    y = (X[:, 0] - X[:, 1] + rng.normal(scale=1.5, size=n) > 1.5).astype(int)
    return pd.DataFrame({"patient_nbr": patients, **dict(zip(FEATURES, X.T, strict=True)),
                         TARGET: y})  # fmt: skip


@pytest.fixture
def stored(tmp_path) -> TrainingSnapshotDataset:
    """A saved snapshot of 1500 train rows in row groups of 128: tiny, but many batches."""
    dataset = TrainingSnapshotDataset(path=str(tmp_path / "pre"), row_group_rows=128)
    train, test = _window(1500, 0), _window(600, 1)
    dataset.save(TrainingSnapshot(train, test, test, StandardScaler().fit(train[FEATURES]),
                                  {"processed_features": FEATURES}))  # fmt: skip
    return dataset


def _config(enabled, max_rows: int = 1_000_000, tune: bool = False) -> dict:
    limits = {"enabled": enabled, "max_in_memory_rows": max_rows, "batch_rows": 100}
    return {"hyperparameter_tuning": tune, "external_memory": limits}


def test_the_train_window_streams_in_bounded_batches_of_the_saved_rows(stored, tmp_path):
    snapshot = stored.load()
    assert snapshot.rows("train") == 1500  # from the signed metadata, nothing read
    with snapshot.batches("train", 100) as read:
        sizes = [len(frame) for frame in read([TARGET])]
        again = pd.concat(read(["patient_nbr", *FEATURES, TARGET]), ignore_index=True)
    assert max(sizes) <= 100 and sum(sizes) == 1500
    pd.testing.assert_frame_equal(again, _window(1500, 0))


def test_a_tampered_train_parquet_is_refused_before_any_batch(stored, tmp_path):
    snapshot = stored.load()
    (parquet,) = (tmp_path / "pre").glob("*/train_processed.parquet")
    _window(1500, 9).to_parquet(parquet, index=False)  # valid Parquet, other rows
    with (
        pytest.raises(ModelIntegrityError, match=r"refusing to read .*train_processed\.parquet"),
        snapshot.batches("train", 100),
    ):
        pytest.fail("a batch reader was handed out for a file that does not verify")
    with pytest.raises(ModelIntegrityError):
        train_model(stored.load(), XGBOOST, MODEL_CONFIG, _config(True))


def test_external_memory_refit_matches_the_in_memory_refit(stored):
    """Same parameters and rows; only the quantile sketch could differ (merged over 15 batches
    instead of one pass). At 1500 rows the merged sketch is still exact, so the predictions agree
    to float precision (1e-6): a refit that lost or repeated a batch, or took scale_pos_weight
    from part of the labels, differs far more. On large windows split thresholds may shift by a
    bin; there the held-out AUC is what should agree."""
    snapshot = stored.load()
    streamed, report = train_model(snapshot, XGBOOST, MODEL_CONFIG, _config(True))
    loaded, baseline = train_model(snapshot, XGBOOST, MODEL_CONFIG, _config(False))
    assert (report["training_mode"], baseline["training_mode"]) == ("external", "in_memory")
    assert report["refit_rows"] == baseline["refit_rows"] == 1500
    y = snapshot.train[TARGET]
    assert streamed.scale_pos_weight == loaded.scale_pos_weight == (y == 0).sum() / y.sum()
    X, _, _ = snapshot.arrays("test")
    p_streamed, p_loaded = streamed.predict_proba(X)[:, 1], loaded.predict_proba(X)[:, 1]
    np.testing.assert_allclose(p_streamed, p_loaded, atol=1e-6)
    # What evaluation, packaging and serving use: predict_proba and TreeSHAP on the booster.
    contributions = streamed.get_booster().predict(xgboost.DMatrix(X), pred_contribs=True)
    margin = streamed.predict(X, output_margin=True)
    np.testing.assert_allclose(contributions.sum(axis=1), margin, rtol=1e-4, atol=1e-4)


def test_the_search_runs_on_a_patient_subsample_and_the_refit_on_every_row(stored):
    snapshot = stored.load()
    model, report = train_model(snapshot, XGBOOST, MODEL_CONFIG, _config("auto", 500, tune=True))
    assert report["training_mode"] == "external" and report["refit_rows"] == 1500
    assert 300 < report["search_rows"] < 700 and report["best_params"]["max_depth"] in (2, 3)
    assert model.get_booster().num_boosted_rounds() == 40


def test_an_estimator_that_cannot_stream_trains_on_the_subsample(stored):
    forest = {"estimator": "random_forest", "params": {"n_estimators": 10}, "search_space": {}}
    _, report = train_model(stored.load(), forest, MODEL_CONFIG, _config("auto", 500))
    assert report["training_mode"] == "subsample" and 300 < report["refit_rows"] < 700


@pytest.mark.parametrize(
    ("estimator", "rows", "enabled", "mode"),
    [
        ("xgboost", 10, "auto", "in_memory"),
        ("xgboost", 11, "auto", "external"),
        ("xgboost", 5, True, "external"),
        ("xgboost", 99, False, "in_memory"),
        ("random_forest", 11, True, "subsample"),
        ("logistic_regression", 10, True, "in_memory"),
        ("logistic_regression", 99, False, "in_memory"),
    ],
)
def test_the_training_mode_follows_the_parameters(estimator, rows, enabled, mode):
    config = {"enabled": enabled, "max_in_memory_rows": 10, "batch_rows": 5}
    assert training_mode(estimator, rows, config)[0] == mode
