"""Performance on mature labels, and concept drift against the champion's test metrics.

Drops are absolute differences in metric units (0.05 = five points): the design's "accuracy drop
> 5%" read as percentage points. Every metric the profile holds is compared, but only those in
``concept_drift_metrics`` (ranking quality: ROC AUC, PR AUC) are concept drift that argues for
retraining. Metrics at a fixed threshold (accuracy, precision, recall, F1) and Brier move with the
month's base rate and the calibration of that cut-off: on the real 2008 months recall at 0.2 fell
0.06-0.08 below the champion's in months where its ROC AUC was higher (0.705 vs 0.666), and
retraining on the same windows cannot change that. Their breaches are reported as warnings.
Brier is a loss, so for it a *rise* is the drop.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_curve

from readmit_kedro.model.label_maturity import label_is_mature
from readmit_kedro.model.metrics import bootstrap_intervals, classification_metrics
from readmit_kedro.model.reference_profile import CHAMPION_METRICS
from readmit_kedro.pipelines.monitoring.config import MonitoringConfig
from readmit_kedro.pipelines.monitoring.window import Window
from readmit_kedro.schema import TARGET

LOWER_IS_BETTER = frozenset({"brier"})
# The ROC curve is stored on a fixed false-positive-rate grid: aggregates, not per-patient cut-offs.
ROC_GRID = np.linspace(0.0, 1.0, 101)


def split_by_maturity(
    predictions: pd.DataFrame, labels: pd.DataFrame, stays: pd.DataFrame, window: Window
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Mature predictions with their label, and counts of mature / immature / unlabelled ones.

    Mature: discharged ``label_maturity_days`` or more before ``run_date``, the rule training uses
    (``model.label_maturity``); the stay comes from gold features (``stays``: encounter_id,
    time_in_hospital). ``patient_nbr`` is kept (in memory only) to cluster the bootstrap
    intervals by patient.
    """
    stay = predictions[["encounter_id"]].merge(
        stays[["encounter_id", "time_in_hospital"]], on="encounter_id", how="left",
        validate="many_to_one",
    )["time_in_hospital"].to_numpy()  # fmt: skip
    is_mature = label_is_mature(
        predictions["admission_date"],
        pd.Series(stay, index=predictions.index),
        window.run_date,
        window.label_maturity_days,
    )
    mature = predictions[is_mature]
    joined = mature[["encounter_id", "patient_nbr", "probability"]].merge(
        labels[["encounter_id", TARGET]], on="encounter_id", how="left", validate="many_to_one"
    )
    labelled = joined.dropna(subset=[TARGET])
    counts = {
        "predictions_in_window": len(predictions),
        "mature_labelled": len(labelled),
        "immature": len(predictions) - len(mature),
        "mature_unlabelled": len(mature) - len(labelled),
    }
    return labelled, counts


def performance_metrics(labelled: pd.DataFrame, config: MonitoringConfig) -> dict[str, Any]:
    """Metrics, decile calibration and ROC curve, or ``available: false`` with the reason.

    ``intervals`` holds patient-clustered bootstrap intervals of ROC AUC and PR AUC (a patient's
    encounters are resampled together), with ``config.bootstrap``'s resamples, level and seed.
    """
    minimum = config.min_samples_for_metrics
    y = labelled[TARGET].to_numpy(dtype=int)
    if len(y) < minimum:
        return _unavailable(
            f"only {len(y)} mature labelled predictions (< min_samples_for_metrics {minimum}); "
            f"a label matures {config.label_maturity_days} days after discharge"
        )
    if len(np.unique(y)) < 2:
        return _unavailable(f"all {len(y)} mature labels are {y[0]}: metrics need both classes")
    proba = labelled["probability"].to_numpy(dtype=float)
    metrics = classification_metrics(y, proba, config.prediction_threshold)
    fpr, tpr, _ = roc_curve(y, proba)
    metrics["roc_curve"] = {"fpr": ROC_GRID.tolist(), "tpr": np.interp(ROC_GRID, fpr, tpr).tolist()}
    bootstrap = config.bootstrap
    metrics["intervals"] = bootstrap_intervals(
        y,
        proba,
        labelled["patient_nbr"].to_numpy(),
        resamples=bootstrap.resamples,
        level=bootstrap.level,
        seed=bootstrap.seed,
    )
    return {"available": True, "reason": None, **metrics}


def concept_drift(
    metrics: dict[str, Any], champion: dict[str, float], config: MonitoringConfig
) -> dict[str, Any]:
    """Metrics that fell more than ``performance_threshold_drop`` (absolute) below the champion's.

    ``detected`` (and ``retrain`` on a breach) only for the ``concept_drift_metrics``, and, with
    ``significance_guard`` (default), only when the drop is significant: the champion's value lies
    above the whole patient-clustered bootstrap interval of this window's metric. A month of
    ~1,600 mature labels (~180 positives) has a 95% interval of about +-0.04 ROC AUC (+-0.05 PR
    AUC), so a 0.05 drop of the point estimate alone is within reach of noise; a non-significant
    breach is a warning, as is a breach of any other metric.
    """
    if not metrics["available"]:
        return {"evaluated": False, "detected": False, "breaches": []}
    drift_metrics = set(config.concept_drift_metrics)
    intervals = metrics.get("intervals") or {}
    breaches = []
    for name in CHAMPION_METRICS:
        reference, current = champion[name], metrics[name]
        drop = current - reference if name in LOWER_IS_BETTER else reference - current
        if drop > config.performance_threshold_drop:
            interval = _interval(intervals.get(name), metrics)
            significant = (
                not config.significance_guard
                or name in LOWER_IS_BETTER
                or interval is None
                or interval["high"] < reference
            )
            retrain = name in drift_metrics and significant
            critical = retrain and drop > config.critical_performance_drop
            breaches.append(
                {
                    "metric": name,
                    "champion": reference,
                    "current": current,
                    "drop": drop,
                    "threshold": config.performance_threshold_drop,
                    "significant": significant,
                    "interval": interval,
                    "severity": "critical" if critical else "warning",
                    "retrain": retrain,
                }
            )
    detected = any(breach["retrain"] for breach in breaches)
    return {"evaluated": True, "detected": detected, "breaches": breaches}


def _interval(entry: dict[str, Any] | None, metrics: dict[str, Any]) -> dict[str, float] | None:
    if not entry:
        return None
    level = metrics["intervals"].get("level")
    return {"low": entry["low"], "high": entry["high"], "level": level}


def _unavailable(reason: str) -> dict[str, Any]:
    return {"available": False, "reason": reason}
