"""Data drift: PSI of each feature and of the scores against the reference profile, missing rates.

PSI = sum over bins of (current - reference) * ln(current / reference), with the bins of the
reference profile (see ``readmit_kedro.model.reference_profile``). An empty bin would make the log
infinite, so both shares are floored at ``psi_epsilon`` (1e-4: a bin empty on one side then adds
at most about share * ln(share / 1e-4), e.g. 0.69 for a 10% bin - a clear drift, never infinity).

Missing rates: a feature normally complete (reference rate <= ``missing_rate_threshold``) breaches
above the threshold (the design's "missing rate > 10%"); one already missing more often in
training (``medical_specialty`` is ``Missing`` for about half the encounters) breaches only when its rate
rises more than the threshold above the reference, so a structural gap does not alert every week.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd

from readmit_kedro.model.reference_profile import (
    bin_proportions,
    category_labels,
    missing_rate,
    numeric_values,
)


def psi(reference: Sequence[float], current: Sequence[float], epsilon: float) -> float:
    """Population stability index of two aligned share vectors, empty bins floored at epsilon."""
    ref = np.maximum(np.asarray(reference, dtype=float), epsilon)
    cur = np.maximum(np.asarray(current, dtype=float), epsilon)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def numeric_drift(
    series: pd.Series, reference: dict[str, Any], epsilon: float, threshold: float
) -> dict[str, Any]:
    """PSI of a numeric column (missing values left out) over the reference quantile bins.

    ``epsilon`` floors empty bins (``psi_epsilon``); above ``threshold`` (``drift_threshold_psi``)
    the column has drifted.
    """
    values = numeric_values(series)
    current = bin_proportions(values, reference["edges"]).tolist()
    bins = _edge_labels(reference["edges"])
    return _compared(bins, reference["proportions"], current, len(values), epsilon, threshold)


def categorical_drift(
    series: pd.Series, reference: dict[str, Any], epsilon: float, threshold: float
) -> dict[str, Any]:
    """PSI of a categorical column over the reference categories (new ones count as other)."""
    known = list(reference["proportions"])
    shares = category_labels(series, known).value_counts(normalize=True)
    current = [float(shares.get(k, 0.0)) for k in known]
    expected = list(reference["proportions"].values())
    return _compared(known, expected, current, len(series), epsilon, threshold)


def missing_rate_check(
    series: pd.Series, reference_rate: float, tokens: Sequence[str], threshold: float
) -> dict[str, Any]:
    """Current missing rate against its limit (see the module docstring for the rule)."""
    limit = threshold if reference_rate <= threshold else reference_rate + threshold
    rate = missing_rate(series, tokens)
    return {
        "missing_rate": rate,
        "reference_missing_rate": reference_rate,
        "missing_rate_limit": limit,
        "missing_breach": rate > limit,
    }


def _compared(
    bins: list[str],
    reference: list[float],
    current: list[float],
    rows: int,
    epsilon: float,
    threshold: float,
) -> dict[str, Any]:
    # Nothing to compare when there are no current values, or none in training.
    comparable = rows > 0 and sum(reference) > 0
    value = psi(reference, current, epsilon) if comparable else None
    return {
        "psi": value,
        "drift": value is not None and value > threshold,
        "rows": rows,
        "bins": bins,
        "reference": [float(r) for r in reference],
        "current": current,
    }


def _edge_labels(edges: Sequence[float]) -> list[str]:
    if not edges:
        return ["all"]
    inner = [f"({low:.4g}, {high:.4g}]" for low, high in pairwise(edges)]
    return [f"<= {edges[0]:.4g}", *inner, f"> {edges[-1]:.4g}"]
