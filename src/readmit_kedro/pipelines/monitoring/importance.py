"""Global importance month by month: mean |SHAP| per gold feature, and whether its ranking moved.

The served model explains every scored encounter of the window (contributions are recomputed
with that one model, so a champion change between two months is not mistaken for a change in
what drives the scores). The window is cut into ``period_days`` periods ending at ``run_date``
(the "months"); the ranking of the last period is compared with the one before it. Above
``max_rows_per_period`` encounters a period is explained on a seeded sample. Only aggregates
leave this module: one mean per feature and period.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from readmit_kedro.pipelines.monitoring.config import Importance
from readmit_kedro.pipelines.monitoring.window import Window


def explained(admitted: pd.Series, window: Window, rules: Importance) -> pd.Series:
    """Which encounters to explain: every one of a period, or a seeded sample of
    ``max_rows_per_period`` (shap's TreeSHAP of a deep forest costs ~0.2 s per encounter)."""
    period = _period(admitted, window, rules)
    shuffled = pd.Series(
        np.random.default_rng(rules.seed).permutation(len(admitted)), admitted.index
    )
    position = shuffled.groupby(period).rank(method="first")
    return (period >= 0) & (position <= rules.max_rows_per_period)


def period_importance(
    contributions: pd.DataFrame,
    admitted: pd.Series,
    window: Window,
    rules: Importance,
    min_rows: int,
) -> list[dict[str, Any]]:
    """Mean |SHAP| per feature in each period of the window, oldest first.

    ``contributions`` has one row per encounter and one column per gold feature, ``admitted`` the
    admission dates of the window's scored encounters with features (the explained ones have the
    same index). A period with fewer than ``min_rows`` of them (``min_samples_for_metrics``) is
    not available.
    """
    period = _period(admitted, window, rules)
    periods = []
    for k in reversed(range((window.run_date - window.start).days // rules.period_days)):
        end = window.run_date - pd.Timedelta(days=k * rules.period_days)
        rows = contributions[period.loc[contributions.index] == k]
        entry: dict[str, Any] = {
            "admitted_after": (end - pd.Timedelta(days=rules.period_days)).date().isoformat(),
            "admitted_until": end.date().isoformat(),
            "rows": int((period == k).sum()),
            "explained": len(rows),
        }
        if entry["rows"] < min_rows:
            reason = f"{entry['rows']} scored encounters with features (< {min_rows})"
            periods.append({**entry, "available": False, "reason": reason})
            continue
        mean_abs = rows.abs().mean().sort_values(ascending=False, kind="stable")
        periods.append(
            {
                **entry,
                "available": True,
                "reason": None,
                "mean_abs_shap": {str(f): float(v) for f, v in mean_abs.items()},
            }
        )
    return periods


def ranking_change(
    previous: dict[str, Any], current: dict[str, Any], rules: Importance
) -> dict[str, Any]:
    """Features of either period's top ``top_features`` that moved ``min_rank_shift`` places or more."""
    compared = {
        "previous": previous["admitted_until"],
        "current": current["admitted_until"],
        "top_features": rules.top_features,
        "min_rank_shift": rules.min_rank_shift,
    }
    for period in (previous, current):
        if not period["available"]:
            reason = f"period ending {period['admitted_until']}: {period['reason']}"
            return {**compared, "available": False, "reason": reason, "changed": False, "moves": []}
    before, after = _ranks(previous), _ranks(current)
    watched = [
        f for f in after if after[f] <= rules.top_features or before[f] <= rules.top_features
    ]
    moves = [
        {"feature": f, "previous_rank": before[f], "current_rank": after[f]}
        for f in sorted(watched, key=lambda f: (min(before[f], after[f]), f))
        if abs(before[f] - after[f]) >= rules.min_rank_shift
    ]
    return {**compared, "available": True, "reason": None, "changed": bool(moves), "moves": moves}


def _period(admitted: pd.Series, window: Window, rules: Importance) -> pd.Series:
    """0 for the newest period, 1 for the one before ...; -1 before the window's whole periods."""
    days_back = (window.run_date - pd.to_datetime(admitted)).dt.days
    period = days_back // rules.period_days
    whole = (window.run_date - window.start).days // rules.period_days
    return period.where((days_back >= 0) & (period < whole), -1)


def _ranks(period: dict[str, Any]) -> dict[str, int]:
    """1 = largest mean |SHAP| (:func:`period_importance` lists them in decreasing order)."""
    return {name: rank for rank, name in enumerate(period["mean_abs_shap"], start=1)}
