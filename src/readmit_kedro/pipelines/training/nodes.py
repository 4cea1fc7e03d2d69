"""Training nodes: pure functions of their inputs; every read and write goes through the catalog."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.pipeline import Pipeline

from readmit_kedro.io.model_store import TrainingSnapshot
from readmit_kedro.io.registry import LoadedModel
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
from readmit_kedro.model.reference_profile import build_reference_profile
from readmit_kedro.pipelines.training.config import METRICS, build_training_plan
from readmit_kedro.pipelines.training.modeling import train_estimator
from readmit_kedro.pipelines.training.preprocessing import (
    GoldDataError,
    describe_windows,
    fit_preprocessor,
    join_gold,
    split_windows,
    transform_window,
)
from readmit_kedro.schema import FEATURE_COLUMNS, TARGET

logger = logging.getLogger(__name__)

EVALUATION_WINDOWS: tuple[str, ...] = ("test", "oot")
# What every metric, threshold and champion comparison of training is computed on: what inference emits.
SCORE_KIND = "calibrated_probability"


class InsufficientDataError(RuntimeError):
    """Gold holds too little data for an honest training run; the message lists every shortfall."""


class UnchangedTrainingInputsError(InsufficientDataError):
    """The last run trained on exactly these rows and parameters: a retrain would reproduce it."""


# ----------------------------------------------------------------------------- prerequisite checks
def validate_training_config(
    run_date: str,
    temporal_splits: dict[str, Any],
    model_config: dict[str, Any],
    training_config: dict[str, Any],
    **algorithm_configs: dict[str, Any],
) -> dict[str, Any]:
    """Fail before any data is read if the parameters cannot give a valid run; else the plan."""
    plan = build_training_plan(
        run_date, temporal_splits, model_config, training_config, algorithm_configs
    )
    logger.info("training plan: %s", plan)
    return plan


def check_training_data(
    gold_features: pd.DataFrame,
    gold_labels: pd.DataFrame,
    training_plan: dict[str, Any],
    training_config: dict[str, Any],
    latest_registered_models: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Stop the run unless gold has enough year partitions and every window enough labelled rows.

    Also stop it when the latest registered version of every algorithm was trained on the same
    train/test rows with the same parameters: training is deterministic, so it would register
    copies and re-decide the champion identically (a retrain signal that repeats within one
    relative-window year, for instance). New rows, changed rows or parameters run it again.
    """
    requirements = training_config["data_requirements"]
    gold = join_gold(gold_features, gold_labels)
    run_year = pd.Timestamp(training_plan["run_date"]).year
    partitions = sorted(int(y) for y in gold["admission_year"].unique() if y <= run_year)
    windows = split_windows(gold, training_plan)
    problems = []
    if len(partitions) < requirements["min_partitions"]:
        problems.append(
            f"gold has {len(partitions)} admission_year partitions up to {run_year} "
            f"({partitions}); at least {requirements['min_partitions']} are required"
        )
    for name, frame in windows.items():
        window = training_plan["windows"][name]
        years = f"{window['start_year']}-{window['end_year']}"
        if len(frame) < requirements["min_rows_per_window"]:
            problems.append(
                f"window {name} ({years}) has {len(frame)} rows with settled labels; "
                f"at least {requirements['min_rows_per_window']} are required"
            )
        elif frame[TARGET].nunique() < 2:
            problems.append(
                f"window {name} ({years}) has only {TARGET}={frame[TARGET].iloc[0]}: "
                "ROC AUC and a classifier need both classes"
            )
    if problems:
        raise InsufficientDataError("not enough training data:\n  - " + "\n  - ".join(problems))
    report = {
        "partitions": partitions,
        "rows": {name: len(frame) for name, frame in windows.items()},
        "positives": {name: int(frame[TARGET].sum()) for name, frame in windows.items()},
        "inputs_sha256": training_inputs_sha256(windows, training_plan),
    }
    _refuse_a_repeat(report, training_plan, latest_registered_models)
    logger.info("training data check passed: %s", report)
    return report


def training_inputs_sha256(windows: dict[str, pd.DataFrame], training_plan: dict[str, Any]) -> str:
    """Digest of what the models are fitted and selected on: train/test rows and the parameters."""
    digest = hashlib.sha256(training_plan["parameters_sha256"].encode())
    for name in ("train", "test"):
        rows = windows[name].sort_values("encounter_id").reset_index(drop=True)
        rows = rows[sorted(rows.columns)]
        digest.update(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _refuse_a_repeat(
    report: dict[str, Any], plan: dict[str, Any], latest: dict[str, dict[str, Any]]
) -> None:
    previous = [latest.get(name) for name in plan["algorithms"]]
    if not all(
        record and record.get("training_inputs_sha256") == report["inputs_sha256"]
        for record in previous
    ):
        return
    windows = plan["windows"]
    raise UnchangedTrainingInputsError(
        "nothing new to train on: the latest versions ("
        + ", ".join(f"{r['algorithm']} {r['version']}" for r in previous)
        + f") were trained on the same rows (train {windows['train']['start_year']}-"
        f"{windows['train']['end_year']}: {report['rows']['train']}, test "
        f"{windows['test']['start_year']}-{windows['test']['end_year']}: {report['rows']['test']})"
        " and parameters; a retrain would reproduce them. It runs again once the windows move, "
        "the rows change or the training parameters do."
    )


# --------------------------------------------------------------------------------- preprocessing
def preprocess_training_data(
    gold_features: pd.DataFrame,
    gold_labels: pd.DataFrame,
    training_plan: dict[str, Any],
    training_data_check: dict[str, Any],
    training_config: dict[str, Any],
    model_config: dict[str, Any],
) -> TrainingSnapshot:
    """Split once, fit the preprocessor on train only, and process all three windows with it."""
    windows = split_windows(join_gold(gold_features, gold_labels), training_plan)
    preprocessor = fit_preprocessor(
        windows["train"],
        training_config["preprocessing"],
        feature_selection=training_config["feature_selection"],
        seed=model_config["random_state"],
    )
    processed = {name: transform_window(preprocessor, frame) for name, frame in windows.items()}
    metadata = {
        **training_plan,
        "partitions": training_data_check["partitions"],
        "input_features": list(FEATURE_COLUMNS),
        "processed_features": list(preprocessor.get_feature_names_out()),
        "preprocessing": training_config["preprocessing"],
        "feature_selection": training_config["feature_selection"],
        "training_inputs_sha256": training_data_check["inputs_sha256"],
        **describe_windows(windows),
    }
    logger.info(
        "preprocessed %s rows into %d features; patients shared between windows: %s",
        {name: len(frame) for name, frame in processed.items()},
        len(metadata["processed_features"]),
        metadata["shared_patients"],
    )
    return TrainingSnapshot(**processed, preprocessor=preprocessor, metadata=metadata)


# ------------------------------------------------------------------------------- per algorithm
def train_model(
    snapshot: TrainingSnapshot,
    algorithm: dict[str, Any],
    model_config: dict[str, Any],
    training_config: dict[str, Any],
) -> tuple[BaseEstimator, dict[str, Any]]:
    """Tune on the train window (CV grouped by patient) and refit; also the search report."""
    X, y, patients = snapshot.arrays("train")
    return train_estimator(
        algorithm,
        X,
        y,
        patients,
        model_config,
        tune=training_config["hyperparameter_tuning"],
        label=algorithm["estimator"],
    )


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
        "oot": calibrated_metrics(
            calibrated_oot, calibrated_oot, y_oot, patients_oot, training_config
        ),
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
    return calibrated_metrics(calibrated, held_out, y, patients, training_config)


def calibrated_metrics(
    ranking_scores: np.ndarray,
    probabilities: np.ndarray,
    y: np.ndarray,
    patients: np.ndarray,
    training_config: dict[str, Any],
) -> dict[str, Any]:
    """Metrics at the decision threshold, ROC/PR AUC of ``ranking_scores`` with their intervals."""
    evaluation = training_config["evaluation"]
    intervals = bootstrap_intervals(
        y,
        ranking_scores,
        patients,
        resamples=evaluation["bootstrap_resamples"],
        level=evaluation["interval_level"],
        seed=evaluation["seed"],
    )
    return {
        **classification_metrics(y, probabilities, training_config["prediction_threshold"]),
        "roc_auc": intervals["roc_auc"]["estimate"],
        "pr_auc": intervals["pr_auc"]["estimate"],
        "score_kind": SCORE_KIND,
        "intervals": intervals,
    }


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
    pipeline = Pipeline([("preprocess", snapshot.preprocessor), ("model", estimator)])
    return {
        "model": CalibratedModel(pipeline, calibrator),
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


# ------------------------------------------------------------------------------------ champion
def score_current_champion(
    current_champion: LoadedModel | None,
    gold_features: pd.DataFrame,
    gold_labels: pd.DataFrame,
    snapshot: TrainingSnapshot,
    training_config: dict[str, Any],
) -> dict[str, Any]:
    """Re-score the current champion on exactly the test rows the challengers are scored on.

    Its uncalibrated scores are cross-fit calibrated on those rows as a challenger's are, so the
    comparison is like for like whatever the champion metric (its calibrator saw another window).
    """
    if current_champion is None:
        return {"champion": None}
    gold = join_gold(gold_features, gold_labels)
    test = gold[gold["encounter_id"].isin(snapshot.test["encounter_id"])]
    if len(test) != len(snapshot.test):
        raise GoldDataError(
            f"gold changed since preprocessing: {len(test)} of the {len(snapshot.test)} test "
            "encounters are still there; re-run the training pipeline"
        )
    record = current_champion.record
    return {
        "champion": {k: record[k] for k in ("algorithm", "version", "sha256")},
        "test": calibration_window_metrics(
            *_raw_and_shipped_scores(current_champion.model, test),
            test[TARGET].to_numpy(),
            test["patient_nbr"].to_numpy(),
            training_config,
        ),
    }


def _raw_and_shipped_scores(
    bundle: CalibratedModel, gold: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """A registered bundle's scores before its calibrator, and the probabilities it emits."""
    raw = bundle.model.predict_proba(gold)[:, 1]
    return raw, bundle.calibrator.predict(raw)


def select_champion(
    training_plan: dict[str, Any],
    current_champion_scores: dict[str, Any],
    training_config: dict[str, Any],
    **candidates: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Best eligible candidate on test, unless worse than the champion by more than the tolerance.

    Returns the champion decision (saving it promotes, or keeps the champion as a no-op) and a
    report that says why.
    """
    metric = training_config["champion"]["metric"]
    tolerance = training_config["champion"]["tolerance"]
    sign = 1 if METRICS[metric] else -1
    _check_same_run(candidates, training_plan)
    eligible = {a: r for a, r in candidates.items() if a in training_plan["algorithms"]}
    best = max(eligible, key=lambda a: sign * eligible[a]["metrics"]["test"][metric])
    challenger = eligible[best]
    score = challenger["metrics"]["test"][metric]
    test = training_plan["windows"]["test"]
    window = f"test window {test['start_year']}-{test['end_year']}"
    described = f"{best} {challenger['version']} ({metric} {score:.4f} on the {window})"
    current = current_champion_scores["champion"]
    if current is None:
        decision, reason = challenger, f"first champion: {described}"
    else:
        incumbent = current_champion_scores["test"][metric]
        shortfall = sign * (incumbent - score)
        named = f"{current['algorithm']} {current['version']} (re-scored {metric} {incumbent:.4f})"
        if shortfall > tolerance:
            decision = current
            reason = (
                f"kept {named}: best challenger {described} is worse by {shortfall:.4f}, "
                f"more than the tolerance {tolerance}"
            )
        else:
            decision = challenger
            reason = f"promoted {described} over {named}, tolerance {tolerance}"
    logger.info("champion selection: %s", reason)
    report = {
        "decision": {"algorithm": decision["algorithm"], "version": decision["version"]},
        "promoted": decision is challenger,
        "reason": reason,
        "metric": metric,
        "tolerance": tolerance,
        "run_date": training_plan["run_date"],
        "windows": training_plan["windows"],
        "candidates": {
            a: {
                "version": r["version"],
                "eligible": a in eligible,
                **{w: r["metrics"][w] for w in EVALUATION_WINDOWS},
            }
            for a, r in candidates.items()
        },
        "current_champion": current_champion_scores,
    }
    return {**report["decision"], "reason": reason}, report


def _check_same_run(candidates: dict[str, Any], plan: dict[str, Any]) -> None:
    """Refuse to compare models from different runs (e.g. a stale version after a failed task)."""
    snapshots = {r.get("training_data_version") for r in candidates.values()}
    run_dates = {r.get("run_date") for r in candidates.values()}
    if len(snapshots) != 1 or run_dates != {plan["run_date"]}:
        found = {a: (r["version"], r.get("training_data_version")) for a, r in candidates.items()}
        raise RuntimeError(
            f"latest registered versions come from different training runs {found} (run_date "
            f"{plan['run_date']}); re-run every algorithm before selecting a champion"
        )


def build_champion_reference(
    champion: LoadedModel,
    gold_features: pd.DataFrame,
    gold_labels: pd.DataFrame,
    training_plan: dict[str, Any],
    training_config: dict[str, Any],
    profile_config: dict[str, Any],
) -> dict[str, Any]:
    """Monitoring's baseline: the champion's profile and metrics on this run's test window.

    The test window is the most recent labelled data the champion was validated on, so drift is
    measured from there (see ``readmit_kedro.model.reference_profile``). The score distribution is the
    bundle's, as production emits it; the metrics use cross-fitted probabilities (the bundle's
    calibrator was fitted on these very rows) at the shared decision threshold.
    """
    test = split_windows(join_gold(gold_features, gold_labels), training_plan)["test"]
    y = test[TARGET].to_numpy()
    raw, shipped = _raw_and_shipped_scores(champion.model, test)
    held_out = cross_fitted_probabilities(
        raw,
        y,
        test["patient_nbr"].to_numpy(),
        folds=training_config["evaluation"]["calibration_folds"],
    )
    test_metrics = classification_metrics(y, held_out, training_config["prediction_threshold"])
    profile = build_reference_profile(
        test[list(FEATURE_COLUMNS)],
        shipped,
        test_metrics,
        profile_config,
    )
    champion_info = {k: champion.record[k] for k in ("algorithm", "version")}
    # Monitoring's retrain cooldown counts from this run, whether or not the champion changed.
    return {
        **profile,
        "champion": {**champion_info, "training_run_date": training_plan["run_date"]},
    }
