"""Installed size of what the scoring service loads, and how long its imports take.

Imports the service (``readmit_kedro.serving``, uvicorn) and what unpickling a bundle loads
(xgboost, scikit-learn, pandas, pyarrow), then sums the installed files of every distribution
with a module loaded: the figure deploy/ecs/README.md compares with Lambda's package limits.

    .venv/bin/python scripts/serving_footprint.py
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import sys
import time
from pathlib import Path

MODULES = (
    "readmit_kedro.serving.app",
    "readmit_kedro.serving.scoring",
    "uvicorn",
    "xgboost",
    "sklearn",
    "pandas",
    "pyarrow",
)


def installed_bytes(name: str) -> int:
    dist = metadata.distribution(name)
    paths = (Path(str(dist.locate_file(f))) for f in dist.files or [])
    return sum(p.stat().st_size for p in paths if p.is_file())


def main() -> None:
    started = time.perf_counter()
    for module in MODULES:
        importlib.import_module(module)
    elapsed = time.perf_counter() - started
    owners = metadata.packages_distributions()
    loaded = {name.split(".")[0] for name in sys.modules}
    names = sorted({d for top in loaded for d in owners.get(top, [])})
    sizes = sorted(((installed_bytes(n), n) for n in names), reverse=True)
    for size, name in sizes[:8]:
        print(f"{size / 1e6:8.1f} MB  {name}")
    total = sum(size for size, _ in sizes)
    print(f"{total / 1e6:8.1f} MB  in {len(names)} distributions; imports took {elapsed:.1f} s")


if __name__ == "__main__":
    main()
