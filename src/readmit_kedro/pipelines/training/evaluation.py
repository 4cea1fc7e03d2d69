"""One algorithm after its fit: calibrate on test, evaluate what inference emits, package the bundle.

Every figure here is of the calibrated probability (``SCORE_KIND``), the score inference emits, so
the metrics, the decision threshold and the champion comparison all speak of the same number.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from readmit_kedro.io.model_store import TrainingSnapshot
from readmit_kedro.model.calibration import (
    CalibratedModel,
    SplineCalibrator,
    cross_fitted_probabilities,
)
from readmit_kedro.model.metrics import (
    bootstrap_intervals,
    classification_metrics,
    describe_interval,
    expected_calibration_error,
)

logger = logging.getLogger(__name__)

# What every metric, threshold and champion comparison of training is computed on: what inference emits.
SCORE_KIND = "calibrated_probability"


def evaluate_model(
    estimator: BaseEstimator, snapshot: TrainingSnapshot, training_config: dict[str, Any]
) -> tuple[dict[str, Any], SplineCalibrator]:
    """Calibrate on the test window, then metrics of the calibrated probabilities inference emits.

    No test figure is scored in sample (``calibration_window_metrics``), so test metrics are
    comparable across models and model choice reads only them. OOT is scored by the calibrator
    fitted on the whole test window and is reported, never used to choose. Every window carries
    patient-clustered bootstrap intervals of ROC AUC and PR AUC.
    """
    X_test, y_test, patients_test = snapshot.arrays("test")
    raw_test = estimator.predict_proba(X_test)[:, 1]
    calibrator = SplineCalibrator().fit(raw_test, y_test)
    X_oot, y_oot, patients_oot = snapshot.arrays("oot")
    raw_oot = estimator.predict_proba(X_oot)[:, 1]
    calibrated_oot, lower, upper = calibrator.predict_with_interval(raw_oot)
    metrics = {
        "test": calibration_window_metrics(
            raw_test, calibrator.predict(raw_test), y_test, patients_test, training_config
        ),
        "oot": calibrated_metrics(calibrated_oot, y_oot, patients_oot, training_config),
    }
    metrics["calibration"] = {
        "method": "spline logistic calibration fitted on the test window",
        "oot_ece_raw": expected_calibration_error(y_oot, raw_oot),
        "oot_ece_calibrated": expected_calibration_error(y_oot, calibrated_oot),
        "interval_level": calibrator.level,
        "oot_median_interval_width": float(np.median(upper - lower)),
        "test_cross_fit_folds": training_config["evaluation"]["calibration_folds"],
    }
    logger.info(
        "%s: test roc_auc %s, oot roc_auc %s",
        type(estimator).__name__,
        describe_interval(metrics["test"]["intervals"]["roc_auc"]),
        describe_interval(metrics["oot"]["intervals"]["roc_auc"]),
    )
    return metrics, calibrator


def calibration_window_metrics(
    raw: np.ndarray,
    calibrated: np.ndarray,
    y: np.ndarray,
    patients: np.ndarray,
    training_config: dict[str, Any],
) -> dict[str, Any]:
    """Metrics on the window the calibrator was fitted on, without scoring it in sample.

    Ranking metrics read the shipped ``calibrated`` scores: a non-decreasing map cannot inflate
    them. Probability and threshold metrics read cross-fitted probabilities (each patient fold
    calibrated from ``raw`` by the other folds), since in-sample calibration flatters those.
    """
    held_out = cross_fitted_probabilities(
        raw, y, patients, folds=training_config["evaluation"]["calibration_folds"]
    )
    return calibrated_metrics(calibrated, y, patients, training_config, probabilities=held_out)


def calibrated_metrics(
    scores: np.ndarray,
    y: np.ndarray,
    patients: np.ndarray,
    training_config: dict[str, Any],
    *,
    probabilities: np.ndarray | None = None,
) -> dict[str, Any]:
    """ROC/PR AUC of ``scores`` with their intervals, and metrics at the decision threshold.

    The thresholded metrics read ``probabilities`` where given (held-out ones, see
    ``calibration_window_metrics``), else ``scores`` themselves.
    """
    evaluation = training_config["evaluation"]
    intervals = bootstrap_intervals(
        y,
        scores,
        patients,
        resamples=evaluation["bootstrap_resamples"],
        level=evaluation["interval_level"],
        seed=evaluation["seed"],
    )
    thresholded = scores if probabilities is None else probabilities
    return {
        **classification_metrics(y, thresholded, training_config["prediction_threshold"]),
        "roc_auc": intervals["roc_auc"]["estimate"],
        "pr_auc": intervals["pr_auc"]["estimate"],
        "score_kind": SCORE_KIND,
        "intervals": intervals,
    }


def model_bundle(
    estimator: BaseEstimator, calibrator: SplineCalibrator, snapshot: TrainingSnapshot
) -> CalibratedModel:
    """The registered model: the snapshot's preprocessor, the estimator and its calibrator."""
    pipeline = Pipeline([("preprocess", snapshot.preprocessor), ("model", estimator)])
    return CalibratedModel(pipeline, calibrator)


def package_model(
    estimator: BaseEstimator,
    calibrator: SplineCalibrator,
    snapshot: TrainingSnapshot,
    evaluation: dict[str, Any],
    search_report: dict[str, Any],
    algorithm: dict[str, Any],
) -> dict[str, Any]:
    """The registry entry: one bundle (preprocessor + estimator + calibrator) that scores gold rows.

    The metadata records the score inference emits (calibrated probability) and the threshold it
    labels at, which is the one the thresholded metrics were computed at.
    """
    meta = snapshot.metadata
    sources = sorted({s for w in meta["window_stats"].values() for s in w["data_source"]})
    return {
        "model": model_bundle(estimator, calibrator, snapshot),
        "metrics": evaluation,
        "metadata": {
            "estimator": algorithm["estimator"],
            "params": search_report["params"],
            "search": search_report,
            "training_data_version": meta["version"],
            "training_inputs_sha256": meta["training_inputs_sha256"],
            "run_date": meta["run_date"],
            "windows": meta["windows"],
            "data_source": sources,
            "input_features": meta["input_features"],
            "processed_features": meta["processed_features"],
            "score_kind": SCORE_KIND,
            "prediction_threshold": evaluation["test"]["threshold"],
        },
    }
