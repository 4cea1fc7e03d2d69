"""A realistic drift to inject into landed extracts, so monitoring has something true to find.

From a chosen month the hospital (1) starts sending ICD-10 codes for circulatory primary diagnoses
(``428`` arrives as ``I428``: a coding change, not a change in patients) and (2) keeps patients
longer (length of stay + ``extra_days``, capped at the field's 14-day maximum).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pandas as pd

from readmit_kedro.io.atomic import atomic_write


def inject_drift(frame: pd.DataFrame, extra_days: int = 3) -> pd.DataFrame:
    """The extract as the drifted hospital would send it (all values stay text, as landed)."""
    drifted = frame.copy()
    code = pd.to_numeric(drifted["diag_1"], errors="coerce")
    circulatory = code.between(390, 459.99)
    drifted.loc[circulatory, "diag_1"] = "I" + drifted.loc[circulatory, "diag_1"]
    stay = pd.to_numeric(drifted["time_in_hospital"], errors="coerce")
    longer = (stay + extra_days).clip(upper=14).astype("Int64").astype(str)
    drifted["time_in_hospital"] = longer.where(stay.notna(), frame["time_in_hospital"])
    return drifted


def drift_extract(path: Path, extra_days: int = 3) -> None:
    """Rewrite one landed extract with :func:`inject_drift`, atomically."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_filter=False)
    payload = inject_drift(frame, extra_days).to_csv(index=False).encode()
    with atomic_write(path) as handle:
        handle.write(gzip.compress(payload, compresslevel=1))
