"""Hold-out metrics of a probability model: ranking, calibration, and decisions at a threshold."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_score,
    recall_score,
    roc_auc_score,
)


def classification_metrics(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, Any]:
    """Threshold-free scores (ROC AUC, PR AUC, Brier, log loss) plus decisions at ``threshold``.

    The decile calibration table shows whether predicted risks can be read as probabilities; class
    weighting during training trades that away for recall, and this is where it becomes visible.
    """
    y = np.asarray(y)
    predicted = (proba >= threshold).astype(int)
    return {
        "rows": len(y),
        "positive_rate": float(y.mean()),
        "roc_auc": float(roc_auc_score(y, proba)),
        "pr_auc": float(average_precision_score(y, proba)),
        "brier": float(brier_score_loss(y, proba)),
        "log_loss": float(log_loss(y, proba, labels=[0, 1])),
        "threshold": threshold,
        "accuracy": float(accuracy_score(y, predicted)),
        "precision": float(precision_score(y, predicted, zero_division=0)),
        "recall": float(recall_score(y, predicted, zero_division=0)),
        "f1": float(f1_score(y, predicted, zero_division=0)),
        "predicted_positive_rate": float(predicted.mean()),
        "calibration": calibration_table(y, proba),
    }


def calibration_table(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Mean predicted risk vs observed rate per predicted-risk decile (fewer bins if risks tie)."""
    frame = pd.DataFrame({"y": y, "p": proba})
    frame["bin"] = pd.qcut(frame["p"], q=bins, labels=False, duplicates="drop")
    table = frame.groupby("bin").agg(
        rows=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean")
    )
    return [
        {"decile": int(b) + 1, "rows": int(r.rows), "mean_predicted": float(r.mean_predicted),
         "observed_rate": float(r.observed_rate)}
        for b, r in table.iterrows()
    ]  # fmt: skip


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> float:
    """Row-weighted mean gap between predicted risk and observed rate over risk deciles."""
    table = calibration_table(y, proba, bins)
    total = sum(row["rows"] for row in table)
    return float(
        sum(row["rows"] * abs(row["mean_predicted"] - row["observed_rate"]) for row in table)
        / total
    )
