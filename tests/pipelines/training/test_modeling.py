"""Patient-grouped CV, the halving schedule, the search itself and estimator construction."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from readmit_kedro.pipelines.training.modeling import (
    build_estimator,
    halving_schedule,
    halving_search,
    patient_folds,
    subsample_patients,
    train_estimator,
)

MODEL_CONFIG = {
    "random_state": 3,
    "cv_folds": 3,
    "n_iter_search": 5,
    "n_jobs": 2,
    "halving_factor": 2,
    "final_rung_fraction": 1.0,
}


def _data(n: int = 1200, seed: int = 0):
    rng = np.random.default_rng(seed)
    patients = rng.integers(0, n // 3, n)  # ~3 encounters per patient
    X = rng.normal(size=(n, 4)) + rng.normal(size=(n // 3, 4))[patients]
    y = (X[:, 0] + rng.normal(scale=1.5, size=n) > 1.2).astype(int)
    return X, y, patients


def test_no_patient_is_in_two_folds_or_in_train_and_test():
    X, y, patients = _data()
    folds = patient_folds(X, y, patients, {"cv_folds": 5, "random_state": 1})
    assert len(folds) == 5
    seen: set[int] = set()
    for train, test in folds:
        assert not set(patients[train]) & set(patients[test])
        assert not seen & set(patients[test])
        seen |= set(patients[test])
    assert np.array_equal(np.sort(np.concatenate([t for _, t in folds])), np.arange(len(y)))


def test_subsampling_keeps_whole_patients():
    _, y, patients = _data()
    rows = np.arange(len(y))
    kept = subsample_patients(rows, patients, 0.3, np.random.default_rng(0))
    assert 0.2 * len(y) < len(kept) < 0.4 * len(y)
    chosen = set(patients[kept])
    assert set(rows[np.isin(patients, list(chosen))]) == set(kept)
    assert subsample_patients(rows, patients, 1.0, np.random.default_rng(0)) is rows


def test_halving_schedule_grows_rows_and_folds_per_rung():
    assert halving_schedule(20, 5, 3, 0.25) == [
        (20, 1, pytest.approx(0.25 / 9)),
        (7, 2, pytest.approx(0.25 / 3)),
        (3, 5, 0.25),
    ]
    assert halving_schedule(4, 3, 3, 1.0) == [(4, 1, pytest.approx(1 / 3)), (2, 3, 1.0)]
    assert halving_schedule(1, 5, 3, 0.5) == [(1, 5, 0.5)]


def test_search_keeps_the_best_and_logs_every_candidate(caplog):
    X, y, patients = _data()
    config = {
        "estimator": "logistic_regression",
        "params": {"class_weight": "balanced"},
        "search_space": {"C": {"loguniform": [1e-5, 10.0]}},
    }
    estimator = build_estimator(config, y, random_state=0, n_jobs=1)
    with caplog.at_level(logging.INFO):
        result = halving_search(
            estimator, config["search_space"], X, y, patients, MODEL_CONFIG, label="lr"
        )
    assert [(r["candidates"], r["folds"]) for r in result["schedule"]] == [(5, 1), (3, 2), (2, 3)]
    assert len(result["history"]) == 5 + 3 + 2
    last = [h for h in result["history"] if h["rung"] == 3]
    assert result["best_cv_roc_auc"] == max(h["mean_roc_auc"] for h in last)
    assert result["best_params"] == max(last, key=lambda h: h["mean_roc_auc"])["params"]
    assert isinstance(result["best_params"]["C"], float)  # JSON-ready
    lines = [r.getMessage() for r in caplog.records if " candidate " in r.getMessage()]
    assert len(lines) == 10 and all("best so far" in line for line in lines)


def test_train_estimator_refits_the_chosen_parameters():
    X, y, patients = _data()
    config = {
        "estimator": "random_forest",
        "params": {"class_weight": "balanced"},
        "search_space": {"n_estimators": [5, 10], "max_depth": {"randint": [2, 4]}},
    }
    model, report = train_estimator(config, (X, y, patients), MODEL_CONFIG, tune=True, label="rf")
    assert report["tuned"] and model.n_estimators == report["best_params"]["n_estimators"]
    assert model.max_depth == report["best_params"]["max_depth"] and model.n_jobs == 2
    plain, report = train_estimator(config, (X, y, patients), MODEL_CONFIG, tune=False, label="rf")
    assert not report["tuned"] and plain.n_estimators == 100  # library default, no search
    assert report["params"] == {"class_weight": "balanced"}


def test_xgboost_balances_classes_from_the_labels():
    y = np.array([0] * 90 + [1] * 10)
    config = {"estimator": "xgboost", "params": {"scale_pos_weight": "balanced"}}
    model = build_estimator(config, y, random_state=0, n_jobs=1)
    assert model.get_params()["scale_pos_weight"] == 9.0
    lr = build_estimator({"estimator": "logistic_regression"}, y, random_state=0, n_jobs=2)
    assert lr.get_params()["n_jobs"] is None  # lbfgs/newton solvers ignore n_jobs
