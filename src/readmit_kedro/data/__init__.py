"""The raw layer: getting the UCI file in (``acquire``), a synthetic stand-in (``synthetic``), and the
hospital's monthly extracts replayed into the landing zone (``landing``).

Every file these modules publish goes through :func:`atomic_output`, so a reader (a pipeline, a
second ``readmit data land``) never sees a half-written file, and a crash leaves only a hidden temp.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "DEFAULT_LANDING_ROOT",
    "DEFAULT_RAW_DIR",
    "ENV_VAR",
    "RAW_FILENAME",
    "SIDECAR_FILENAME",
    "atomic_output",
]

# The layout, relative to the project root. Kept here (no numpy/pandas import) so the CLI can
# show its defaults without paying for the heavy imports.
DEFAULT_RAW_DIR = Path("data/01_raw")
RAW_FILENAME = "diabetic_data.csv.gz"
SIDECAR_FILENAME = "diabetic_data.source.json"
DEFAULT_LANDING_ROOT = Path("data/01_raw/landing")
ENV_VAR = "READMIT_RAW_DATA"  # path of the real UCI file (.csv, .csv.gz or .zip)


@contextmanager
def atomic_output(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Write ``path`` through a temp file in the same folder, published by ``os.replace`` on success.

    The temp name starts with ``.`` and ends with ``.tmp`` so that folder listings by suffix (the
    landing PartitionedDataset matches ``.csv.gz``) never pick it up. On any error the temp file is
    removed and ``path`` is left as it was.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; published data is readable like any other file
        os.replace(tmp, target)
    except BaseException:
        with suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
