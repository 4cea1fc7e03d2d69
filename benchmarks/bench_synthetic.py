"""Wall time and peak memory of the raw layer: synthetic generation, landing, the real file.

    .venv/bin/python -m benchmarks.bench_synthetic [--rows 1000000] [--seed 42] [--real PATH]

Each step runs in a fresh interpreter so its peak RSS (``resource.getrusage(RUSAGE_SELF)
.ru_maxrss``) is its own; ``baseline`` is the same interpreter after only the imports, so the
difference is what the step itself holds. ``cpu_s`` (user + system) is reported next to the wall
time because the machine may be shared. Steps, on a temporary folder:

- ``generate``: ``acquire(synthetic_rows=N)`` (simulate, write gzip CSV, hash, sidecar);
- ``land``: ``land()`` of those N rows into 120 monthly extracts;
- ``acquire-real`` / ``land-real``: the same for the real UCI file (``--real`` or
  ``$READMIT_RAW_DATA``; skipped when neither is set).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _step(name: str, work: Path, rows: int, seed: int, real: str | None) -> dict[str, object]:
    """Run one step in this process and describe it (called in the child)."""
    from readmit_kedro.landing.acquire import acquire
    from readmit_kedro.landing.monthly import land

    started, cpu_started = time.perf_counter(), time.process_time()
    info: dict[str, object] = {}
    if name == "generate":
        result = acquire(work / "raw", synthetic_rows=rows, seed=seed)
        info = {"rows": result.sidecar["rows"], "gz_mb": result.path.stat().st_size / 2**20}
    elif name == "land":
        result = land(work / "raw" / "diabetic_data.csv.gz", work / "landing")
        info = {"months": len(result.written), "rows": result.rows_written}
    elif name == "acquire-real":
        result = acquire(work / "real", real)
        info = {"rows": result.sidecar["rows"], "data_source": result.sidecar["data_source"]}
    elif name == "land-real":
        result = land(work / "real" / "diabetic_data.csv.gz", work / "landing-real")
        info = {"months": len(result.written), "rows": result.rows_written}
    elif name != "baseline":
        raise SystemExit(f"unknown step {name}")
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {
        "step": name,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "peak_rss_mb": round(peak_mb),
        **info,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--real", default=os.environ.get("READMIT_RAW_DATA"))
    parser.add_argument("--child", nargs=2, metavar=("STEP", "WORKDIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        step, work = args.child
        print(json.dumps(_step(step, Path(work), args.rows, args.seed, args.real)))
        return

    steps = ["baseline", "generate", "land"]
    if args.real:
        steps += ["acquire-real", "land-real"]
    with tempfile.TemporaryDirectory(prefix="bench-synthetic-") as work:
        for step in steps:
            command = [sys.executable, __file__, "--child", step, work]
            command += ["--rows", str(args.rows), "--seed", str(args.seed)]
            if args.real:
                command += ["--real", args.real]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            print(done.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
