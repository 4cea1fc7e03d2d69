"""Wall time, rows/s and peak memory of data_processing, from landing to gold.

    .venv/bin/python -m benchmarks.bench_data_processing [--real PATH] [--synthetic-rows 1000000]

For each source, in a temporary copy of the project: acquire and land the whole history (timed
apart), then ``kedro run --pipelines data_processing`` in a fresh process, so the figure includes
Kedro and Spark start-up. Peak memory is the largest summed RSS of that process tree (Python
driver plus the Spark JVM), sampled from /proc every 100 ms. Prints one JSON line per source.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _tree_rss_mb(root_pid: int) -> float:
    """Summed RSS of a process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        children.setdefault(int(fields[1]), []).append(pid)
        rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total / 2**20


def _run_measured(command: list[str], cwd: Path) -> tuple[float, float]:
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = [0.0]

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], _tree_rss_mb(process.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    sampler.join()
    if process.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{stderr.decode()[-3000:]}")
    return time.perf_counter() - started, peak[0]


def bench(label: str, work: Path, source: str | None, synthetic_rows: int | None) -> dict:
    from readmit_kedro.landing.acquire import acquire
    from readmit_kedro.landing.monthly import land

    project = work / label
    project.mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, project / name)
    shutil.copytree(PROJECT_ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf/local").mkdir()
    (project / "src").mkdir()
    raw_dir = project / "data/01_raw"
    started = time.perf_counter()
    result = acquire(raw_dir, source, synthetic_rows=synthetic_rows)
    land(result.path, raw_dir / "landing")
    landing_s = time.perf_counter() - started
    rows = result.sidecar["rows"]
    kedro = str(Path(sys.executable).with_name("kedro"))
    wall, peak = _run_measured([kedro, "run", "--pipelines", "data_processing"], project)
    return {
        "source": label,
        "rows": rows,
        "acquire_and_land_s": round(landing_s, 1),
        "landing_to_gold_s": round(wall, 1),
        "rows_per_s": round(rows / wall),
        "peak_rss_mb": round(peak),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", default=os.environ.get("READMIT_RAW_DATA"))
    parser.add_argument("--synthetic-rows", type=int, default=1_000_000)
    args = parser.parse_args()
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="bench-dp-") as tmp:
        if args.real:
            print(json.dumps(bench("uci", Path(tmp), args.real, None)), flush=True)
        if args.synthetic_rows:
            runs = bench(f"synthetic-{args.synthetic_rows}", Path(tmp), None, args.synthetic_rows)
            print(json.dumps(runs), flush=True)


if __name__ == "__main__":
    main()
