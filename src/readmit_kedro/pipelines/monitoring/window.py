"""Which predictions a monitoring run looks at, so every run is a pure function of ``run_date``.

* As of ``run_date``: only rows written by inference runs up to ``run_date`` count, and an
  encounter scored more than once (a re-score after a new champion) counts once, with its latest
  score. Replaying an old date therefore gives the same report.
* The window is by admission date, ``(run_date - lookback_days, run_date]``: the encounter
  population is what drifts, and a back-filled inference run must not pile years of encounters
  into one week. Drift uses the whole window; performance uses only its mature part.
* A 30-day readmission label is final only ``label_maturity_days`` after *discharge*, the rule
  training uses too (``model.label_maturity``): performance counts only encounters discharged on
  or before ``run_date - label_maturity_days`` (admission date + stay).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd


@dataclass(frozen=True)
class Window:
    """Bounds of one monitoring run: the window on admission date, maturity on discharge date."""

    run_date: pd.Timestamp
    start: pd.Timestamp  # exclusive, admission date
    maturity_cutoff: pd.Timestamp  # inclusive: discharged on or before it, the label is mature
    label_maturity_days: int

    @classmethod
    def ending(cls, run_day: date, lookback_days: int, label_maturity_days: int) -> Window:
        day = pd.Timestamp(run_day)
        return cls(
            run_date=day,
            start=day - pd.Timedelta(days=lookback_days),
            maturity_cutoff=day - pd.Timedelta(days=label_maturity_days),
            label_maturity_days=label_maturity_days,
        )

    def describe(self) -> dict[str, str]:
        return {
            "run_date": self.run_date.date().isoformat(),
            "admitted_after": self.start.date().isoformat(),
            "label_maturity_cutoff": self.maturity_cutoff.date().isoformat(),  # discharged by
        }


def window_predictions(predictions: pd.DataFrame, window: Window) -> pd.DataFrame:
    """The latest prediction per encounter, as of ``run_date``, admitted within the window."""
    run_days = pd.to_datetime(predictions["run_date"], format="ISO8601")
    scored_at = pd.to_datetime(predictions["scored_at"], format="ISO8601", utc=True)
    admitted = pd.to_datetime(predictions["admission_date"])
    frame = predictions.assign(admission_date=admitted, _scored_at=scored_at)
    frame = frame[run_days <= window.run_date]
    frame = frame.sort_values("_scored_at", kind="stable").drop_duplicates(
        "encounter_id", keep="last"
    )
    in_window = (frame["admission_date"] > window.start) & (
        frame["admission_date"] <= window.run_date
    )
    return frame.loc[in_window].drop(columns="_scored_at").reset_index(drop=True)
