"""The champion's reference profile: what "normal" looked like in its reference window.

Training profiles the champion's test window: the most recent labelled data the champion was
validated on. Its train window would be the wrong "normal" for real data, which drifts for years:
for encounters of Nov 2007-Jan 2008, PSI of payer_code was 0.72 against 1999-2005 but 0.06 against
2006-2007 (medical_specialty 0.64 vs 0.07). Against the train window every monitoring run flagged
drift, and retraining could not clear it, because relative train windows end years before run_date.

Training saves it next to the champion; monitoring compares each week's scored encounters with it
(PSI per feature and of the scores, missing rates, metrics against the champion's test metrics).
Only aggregates are stored - bin edges, proportions, rates - never a patient row.

Binning rules, shared by both sides so reference and current are always cut the same way:

* numeric feature or score: quantile edges of the non-missing reference values (``numeric_bins`` bins,
  duplicate edges dropped, so a mostly-zero count gets fewer bins). Only the inner edges are
  stored; the bins are ``(-inf, e0], (e0, e1], ..., (e_last, +inf)``, so every future value has a
  bin. Missing values are left out of the bins and tracked by the missing rate instead.
* categorical feature: category shares over all rows (NULL counts as ``__missing__``); categories
  rarer than ``rare_category_min_share`` are folded into ``__other__``, which always exists and
  also receives categories never seen in the reference window.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from readmit_kedro.schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES

PROFILE_VERSION = 1
OTHER = "__other__"
NULL_CATEGORY = "__missing__"
CHAMPION_METRICS: tuple[str, ...] = (
    "accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "brier",
)  # fmt: skip


def build_reference_profile(
    reference_features: pd.DataFrame,
    reference_scores: np.ndarray | pd.Series,
    test_metrics: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Summarise the reference window (gold feature rows, before preprocessing) as JSON.

    ``reference_scores`` are the champion's probabilities on those rows; ``test_metrics`` its hold-out
    metrics (the keys of ``CHAMPION_METRICS`` are required); ``params`` is
    ``params:reference_profile_config`` (``numeric_bins``, ``score_bins``,
    ``rare_category_min_share``, ``missing_tokens``).
    """
    missing_columns = [
        c for c in (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES) if c not in reference_features
    ]
    if missing_columns:
        raise ValueError(f"reference_features lacks gold feature columns {missing_columns}")
    missing_metrics = [m for m in CHAMPION_METRICS if test_metrics.get(m) is None]
    if missing_metrics:
        raise ValueError(f"test_metrics lacks champion metrics {missing_metrics}")
    scores = np.asarray(reference_scores, dtype=float)
    if len(scores) != len(reference_features):
        raise ValueError(f"{len(scores)} reference scores for {len(reference_features)} rows")
    if len(reference_features) == 0:
        raise ValueError("the reference window is empty: nothing to profile")
    if not np.isfinite(scores).all():
        raise ValueError("reference scores hold NaN or infinite values")

    tokens = list(params["missing_tokens"])
    numeric = {}
    for column in NUMERIC_FEATURES:
        values = numeric_values(reference_features[column])
        edges = quantile_edges(values, params["numeric_bins"])
        numeric[column] = {"edges": edges, "proportions": bin_proportions(values, edges).tolist()}
    categorical = {
        column: {
            "proportions": _category_shares(
                reference_features[column], params["rare_category_min_share"]
            )
        }
        for column in CATEGORICAL_FEATURES
    }
    score_edges = quantile_edges(scores, params["score_bins"])
    return {
        "profile_version": PROFILE_VERSION,
        "reference_rows": len(reference_features),
        "missing_tokens": tokens,
        "numeric": numeric,
        "categorical": categorical,
        "missing_rate": {
            column: missing_rate(reference_features[column], tokens)
            for column in (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES)
        },
        "score": {
            "edges": score_edges,
            "proportions": bin_proportions(scores, score_edges).tolist(),
        },
        "champion_metrics": {m: float(test_metrics[m]) for m in CHAMPION_METRICS},
    }


def numeric_values(series: pd.Series) -> np.ndarray:
    """The non-missing values of a numeric column as float64."""
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return values[~np.isnan(values)]


def quantile_edges(values: np.ndarray, bins: int) -> list[float]:
    """Inner quantile edges for ``bins`` bins, deduplicated (empty when there are no values)."""
    if len(values) == 0:
        return []
    inner = np.quantile(values, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return [float(e) for e in np.unique(inner)]


def bin_proportions(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """Share of ``values`` in each bin ``(-inf, e0], (e0, e1], ..., (e_last, +inf)``."""
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / max(len(values), 1)


def category_labels(series: pd.Series, known: Sequence[str]) -> pd.Series:
    """Values as strings, NULL as ``__missing__``, anything outside ``known`` as ``__other__``."""
    labels = series.astype("string").fillna(NULL_CATEGORY)
    return labels.where(labels.isin(list(known)), OTHER)


def missing_rate(series: pd.Series, tokens: Sequence[str]) -> float:
    """Share of rows that are NULL or carry a missing-value token (gold writes "Missing")."""
    if len(series) == 0:
        return 0.0
    missing = series.isna()
    if not pd.api.types.is_numeric_dtype(series):
        missing |= series.isin(list(tokens))
    return float(missing.mean())


def _category_shares(series: pd.Series, min_share: float) -> dict[str, float]:
    shares = series.astype("string").fillna(NULL_CATEGORY).value_counts(normalize=True)
    kept = shares[(shares >= min_share) & (shares.index != OTHER)]
    result = {str(k): float(v) for k, v in kept.sort_index().items()}
    result[OTHER] = float(max(0.0, 1.0 - kept.sum()))
    return result
