"""The raw layer: getting the UCI file in (``acquire``), a synthetic stand-in (``synthetic``, with
the real file's counts in ``synthetic_marginals``), the hospital's monthly extracts replayed into
the landing zone (``monthly``), and a drift to inject into them (``inject_drift``).

Every file these modules publish goes through :func:`readmit_kedro.io.atomic.atomic_write`, so a
reader (a pipeline, a second ``readmit data land``) never sees a half-written file, and a crash
leaves only a hidden temp.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_LANDING_ROOT", "DEFAULT_RAW_DIR", "ENV_VAR", "RAW_FILENAME", "SIDECAR_FILENAME"]

# The layout, relative to the project root. Kept here (no numpy/pandas import) so the CLI can
# show its defaults without paying for the heavy imports.
DEFAULT_RAW_DIR = Path("data/01_raw")
RAW_FILENAME = "diabetic_data.csv.gz"
SIDECAR_FILENAME = "diabetic_data.source.json"
DEFAULT_LANDING_ROOT = Path("data/01_raw/landing")
ENV_VAR = "READMIT_RAW_DATA"  # path of the real UCI file (.csv, .csv.gz or .zip)
