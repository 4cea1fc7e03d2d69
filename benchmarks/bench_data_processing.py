"""Wall time, rows/s and peak memory of data_processing, from landing to gold.

    .venv/bin/python -m benchmarks.bench_data_processing [--real PATH] [--synthetic-rows 1000000]
    .venv/bin/python -m benchmarks.bench_data_processing --incremental [--synthetic-rows N]
    .venv/bin/python -m benchmarks.bench_data_processing --cluster [--synthetic-rows N]

For each source, in a temporary copy of the project: acquire and land the whole history (timed
apart), then ``kedro run --pipelines data_processing`` in a fresh process, so the figure includes
Kedro and Spark start-up. Peak memory is the largest summed PSS of that process tree (Python
driver plus the Spark JVM), sampled from /proc every 100 ms. Prints one JSON line per source.

``--incremental`` measures the warm monthly run instead, in one process and one JVM as the replay
runs it: land history through 2008-11 (the real file of ``READMIT_RAW_DATA``/``--real``, else
``--synthetic-rows`` of synthetic history), run data_processing once, land 2008-12 (synthetic:
cut to ``--month-rows`` rows, about what a real month adds, so the month's size does not grow
with the history), time that run, then time a full rebuild (``full_rebuild=true``) of the same
date and compare every table row for row. Its last line is
``incremental: month_s=<s> full_s=<s> ratio=<month/full> history_rows=<n> equal=<true|false>``.

``--cluster`` measures the same landing-to-gold run twice: in local mode, and with ``--env
cluster`` on a Spark standalone master and one worker started on 127.0.0.1 from the pip
distribution (``--worker-cores``, ``--worker-memory``); the difference is the cluster's overhead
(executor JVMs, task shipping, shuffle through the worker) on the same cores. Its last line is
``cluster: local_s=<s> cluster_s=<s> overhead=<cluster/local> rows=<n>``.
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


def _tree_pids(root_pid: int) -> list[int]:
    """A process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    pids, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def _tree_pss_mb(root_pid: int) -> float:
    """Summed proportional set size (PSS) of a process tree: memory it holds, shared pages split.

    Summed RSS counts a page once per process mapping it: when the Spark JVM forks to run
    ``chmod`` (Hadoop's local file system), the child holds the JVM's whole RSS until it execs,
    and one 0.1 s sample of the 1M-row run read 7,381 MB between samples of 3,853 MB.
    """
    total = 0
    for pid in _tree_pids(root_pid):
        try:
            lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
        except OSError:
            continue
        total += sum(int(line.split()[1]) for line in lines if line.startswith("Pss:"))
    return total / 1024


def _run_measured(
    command: list[str], cwd: Path, environ: dict[str, str] | None = None
) -> tuple[float, float]:
    started = time.perf_counter()
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env={**os.environ, **(environ or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    peak = [0.0]

    def sample() -> None:
        while process.poll() is None:
            peak[0] = max(peak[0], _tree_pss_mb(process.pid))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, stderr = process.communicate()
    sampler.join()
    if process.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{stderr.decode()[-3000:]}")
    return time.perf_counter() - started, peak[0]


def bench(
    label: str,
    work: Path,
    source: str | None,
    synthetic_rows: int | None,
    env_name: str = "base",
    environ: dict[str, str] | None = None,
) -> dict:
    """Land the history in a project copy and time ``kedro run --env env_name`` with ``environ``."""
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
    command = [kedro, "run", "--env", env_name, "--pipelines", "data_processing"]
    wall, peak = _run_measured(command, project, environ)
    return {
        "source": label,
        "rows": rows,
        "acquire_and_land_s": round(landing_s, 1),
        "landing_to_gold_s": round(wall, 1),
        "rows_per_s": round(rows / wall),
        "peak_pss_mb": round(peak),
        "cpus": os.cpu_count(),
    }


TABLES = {  # published tables the incremental and the full run must agree on
    "silver_encounters": "data/03_primary/silver_encounters",
    "silver_quarantine": "data/03_primary/silver_quarantine",
    "gold_features": "data/04_feature/gold_features",
    "gold_labels": "data/04_feature/gold_labels",
}
REPORT = "data/08_reporting/data_quality/data_quality_report.json"


def _cut_extract(path: Path, rows: int | None) -> tuple[int, int]:
    """Keep the first ``rows`` rows of a landed extract (all if None); (rows before, rows kept)."""
    import gzip

    lines = gzip.decompress(path.read_bytes()).splitlines(keepends=True)
    _rows_before = len(lines) - 1
    if rows is not None and rows < len(lines) - 1:
        lines = lines[: rows + 1]
        path.write_bytes(gzip.compress(b"".join(lines)))
    return int(_rows_before), len(lines) - 1


def bench_incremental(work: Path, source: str | None, synthetic_rows: int, month_rows: int) -> dict:
    """History through 2008-11, one run, then 2008-12: the monthly run and a full rebuild, timed."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project
    from pyspark.sql import SparkSession

    from readmit_kedro.commands.replay import _with_full_jit
    from readmit_kedro.hooks import get_or_create_spark
    from readmit_kedro.io.published import SparkPublishedTable
    from readmit_kedro.landing.acquire import acquire
    from readmit_kedro.landing.monthly import extract_name, land

    project = work / ("uci" if source else f"synthetic-{synthetic_rows}")
    project.mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, project / name)
    shutil.copytree(PROJECT_ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
    (project / "conf/local").mkdir()
    (project / "src").mkdir()
    raw_dir, landing = project / "data/01_raw", project / "data/01_raw/landing"
    result = acquire(raw_dir, source, synthetic_rows=None if source else synthetic_rows)
    land(result.path, landing, until="2008-11")
    os.chdir(project)
    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        get_or_create_spark(_with_full_jit(session.load_context().config_loader["spark"]))

    def run(**params) -> float:
        started = time.perf_counter()
        with KedroSession.create(project_path=project, runtime_params=params) as session:
            session.run(pipeline_names=["data_processing"])
        return time.perf_counter() - started

    first_s = run(run_date="2008-11-30")
    land(result.path, landing, until="2008-12")
    december = landing / extract_name("2008-12")
    landed_rows, month_rows = _cut_extract(december, None if source else month_rows)
    history_rows = result.sidecar["rows"] - landed_rows
    month_s = run(run_date="2008-12-31")
    incremental = {
        name: SparkPublishedTable(filepath=str(project / path)).load()
        for name, path in TABLES.items()
    }
    report = json.loads((project / REPORT).read_text())
    full_s = run(run_date="2008-12-31", full_rebuild=True)
    spark = SparkSession.builder.getOrCreate()
    differences = {}
    for name, path in TABLES.items():
        full = SparkPublishedTable(filepath=str(project / path)).load()
        before = incremental[name].select(*sorted(incremental[name].columns))
        after = full.select(*sorted(full.columns))
        differences[name] = (
            before.exceptAll(after).count() + after.exceptAll(before).count()
            if before.columns == after.columns
            else -1
        )
    differences["data_quality_report"] = int(json.loads((project / REPORT).read_text()) != report)
    spark.catalog.clearCache()
    return {
        "source": project.name,
        "history_rows": history_rows,
        "month_rows": month_rows,
        "first_run_s": round(first_s, 1),
        "month_s": round(month_s, 2),
        "full_s": round(full_s, 2),
        "differences": differences,
        "equal": not any(differences.values()),
        "cpus": os.cpu_count(),
    }


def bench_cluster(work: Path, rows: int, cores: int, memory: str) -> None:
    """The same synthetic history landed to gold in local mode, then on a one-worker cluster."""
    from tests.support.spark_cluster import standalone_cluster  # the tests' Spark daemons

    local = bench(f"local-{rows}", work, None, rows)
    print(json.dumps(local), flush=True)
    (work / "daemons").mkdir()
    with standalone_cluster(work / "daemons", cores=cores, memory=memory) as cluster:
        cluster.wait_ready()
        environ = {
            "READMIT_SPARK_MASTER": cluster.master_url,
            "READMIT_SPARK_EXECUTOR_MEMORY": memory,  # one executor takes the whole worker
            "PYSPARK_PYTHON": sys.executable,  # the executors' Python workers
        }
        remote = bench(f"cluster-{rows}", work, None, rows, "cluster", environ)
        remote["worker"] = {"cores": cores, "memory": memory}
        remote["peak_pss_of"] = "the driver only (the executor JVM is the worker's)"
    print(json.dumps(remote), flush=True)
    local_s, cluster_s = local["landing_to_gold_s"], remote["landing_to_gold_s"]
    print(
        f"cluster: local_s={local_s:.1f} cluster_s={cluster_s:.1f} "
        f"overhead={cluster_s / local_s:.2f} rows={local['rows']}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", default=os.environ.get("READMIT_RAW_DATA"))
    parser.add_argument("--synthetic-rows", type=int, default=None)
    parser.add_argument("--incremental", action="store_true")
    parser.add_argument("--month-rows", type=int, default=850)
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--worker-cores", type=int, default=2)
    parser.add_argument("--worker-memory", default="3g")  # as local mode's spark.driver.memory
    args = parser.parse_args()
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    if args.incremental:
        source = None if args.synthetic_rows else args.real
        with tempfile.TemporaryDirectory(prefix="bench-dp-inc-") as tmp:
            rows = args.synthetic_rows or 100_000
            figures = bench_incremental(Path(tmp), source, rows, args.month_rows)
            print(json.dumps(figures), flush=True)
            ratio = figures["month_s"] / figures["full_s"]
            print(
                f"incremental: month_s={figures['month_s']:.2f} full_s={figures['full_s']:.2f} "
                f"ratio={ratio:.3f} history_rows={figures['history_rows']} "
                f"equal={str(figures['equal']).lower()}",
                flush=True,
            )
        return
    if args.synthetic_rows is None:
        args.synthetic_rows = 1_000_000
    if args.cluster:
        with tempfile.TemporaryDirectory(prefix="bench-dp-cluster-") as tmp:
            bench_cluster(Path(tmp), args.synthetic_rows, args.worker_cores, args.worker_memory)
        return
    with tempfile.TemporaryDirectory(prefix="bench-dp-") as tmp:
        if args.real:
            print(json.dumps(bench("uci", Path(tmp), args.real, None)), flush=True)
        if args.synthetic_rows:
            runs = bench(f"synthetic-{args.synthetic_rows}", Path(tmp), None, args.synthetic_rows)
            print(json.dumps(runs), flush=True)


if __name__ == "__main__":
    main()
