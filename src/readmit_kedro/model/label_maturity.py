"""The one label-maturity rule, shared by training and monitoring.

``readmitted_30d`` asks whether the patient came back within 30 days *of discharge*, so the label
of an encounter is final only ``maturity_days`` (globals ``label_maturity_days``, 30) after its
discharge: discharge = admission_date + time_in_hospital days. Before that a "no" may still flip.
Training keeps only mature rows in its windows; monitoring scores performance only on them.
"""

from __future__ import annotations

from datetime import date

import pandas as pd


def discharge_date(admission_date: pd.Series, time_in_hospital: pd.Series) -> pd.Series:
    """Admission date plus the stay in days (a missing stay counts as 0 days)."""
    stay = pd.to_timedelta(pd.to_numeric(time_in_hospital).fillna(0), unit="D")
    return pd.to_datetime(admission_date) + stay


def label_is_mature(
    admission_date: pd.Series,
    time_in_hospital: pd.Series,
    run_date: date | pd.Timestamp | str,
    maturity_days: int,
) -> pd.Series:
    """True where discharge + ``maturity_days`` is on or before ``run_date``."""
    due = discharge_date(admission_date, time_in_hospital) + pd.Timedelta(days=maturity_days)
    return due <= pd.Timestamp(run_date)
