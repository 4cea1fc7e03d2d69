"""DAG parse time per generated file, as Airflow's DAG processor pays it (target: < 1 s per file).

    .venv/bin/python -m benchmarks.bench_dag_parse [--repeat 5] [--folder dags]   # make bench-dags

Runs itself again under .airflow-venv's interpreter (Airflow never enters the project's venv),
with AIRFLOW_HOME in a temporary folder. Each measurement forks a child of a parent that has
Airflow loaded, as Airflow 3.3's DAG processor forks one parser per file; the child fills a DagBag
from one file and reports the wall time around DagBag() and Airflow's own dagbag_stats duration.

Two columns per file, in this order:
- cold: the parent holds only airflow.models, so the child also imports the operators (the amazon
  provider pulls boto3, about a second on a busy 2-core machine). This is parsing with
  `[dag_processor] parsing_pre_import_modules = False`.
- processor: the parent first imports the file's `airflow.*` modules, found by the same
  iter_airflow_imports() the DAG processor uses, as it does by default
  (parsing_pre_import_modules = True). This is the per-file cost in a running DAG processor.
Exits 1 if a file's median "processor" time reaches 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_PYTHON = Path(os.environ.get("READMIT_AIRFLOW_VENV", ROOT / ".airflow-venv")) / "bin/python"
TARGET_S = 1.0


def _measure(path: Path) -> tuple[float, float]:
    """Fork; the child parses one file into a DagBag and writes (wall, Airflow's duration)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read)
        from airflow.models import DagBag

        start = time.perf_counter()
        bag = DagBag(dag_folder=str(path))
        wall = time.perf_counter() - start
        stats = [s.duration.total_seconds() for s in bag.dagbag_stats]
        ok = not bag.import_errors and len(bag.dags) == 1
        os.write(write, json.dumps([wall, sum(stats), ok]).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        wall, duration, ok = json.loads(pipe.read())
    os.waitpid(pid, 0)
    if not ok:
        raise SystemExit(f"{path}: import errors or not exactly one DAG")
    return wall, duration


def _table(files: list[Path], folder: Path, repeat: int) -> dict[Path, tuple[float, float]]:
    """file -> (median wall s, median dagbag_stats s) over `repeat` forked parses."""
    result = {}
    for path in files:
        walls, durations = zip(*(_measure(path) for _ in range(repeat)), strict=True)
        result[path] = (statistics.median(walls), statistics.median(durations))
    return result


def run(folder: Path, repeat: int) -> int:
    import importlib
    import logging

    logging.disable(logging.CRITICAL)
    start = time.perf_counter()
    from airflow.models import DagBag  # noqa: F401  (the DAG processor has Airflow loaded)
    from airflow.utils.file import iter_airflow_imports

    print(f"airflow import (once, in the parent): {time.perf_counter() - start:.2f} s")
    files = sorted(folder.glob("*/*_dag.py"))
    if not files:
        raise SystemExit(f"no *_dag.py under {folder}/*/")
    cold = _table(files, folder, repeat)
    start = time.perf_counter()
    for path in files:
        for module in iter_airflow_imports(str(path)):
            importlib.import_module(module)
    print(f"pre-import of the files' airflow modules (once): {time.perf_counter() - start:.2f} s")
    warm = _table(files, folder, repeat)
    print(f"median of {repeat} forked parses, seconds (wall around DagBag(); Airflow's own)")
    print(f"{'file':<48} {'cold':>6} {'(airflow)':>9} {'processor':>10} {'(airflow)':>9}")
    for path in files:
        name = str(path.relative_to(folder))
        (cw, cd), (ww, wd) = cold[path], warm[path]
        print(f"{name:<48} {cw:>6.3f} {cd:>9.3f} {ww:>10.3f} {wd:>9.3f}")
    worst = max(wall for wall, _ in warm.values())
    verdict = "OK" if worst < TARGET_S else "TOO SLOW"
    print(f"worst processor median {worst:.3f} s per file; target < {TARGET_S:.0f} s: {verdict}")
    print(f"worst cold median {max(wall for wall, _ in cold.values()):.3f} s per file")
    return 0 if worst < TARGET_S else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--folder", type=Path, default=ROOT / "dags")
    args = parser.parse_args()
    try:
        import airflow  # noqa: F401
    except ImportError:  # the project's venv: run again with Airflow's
        if not AIRFLOW_PYTHON.is_file():
            raise SystemExit(f"{AIRFLOW_PYTHON} is missing: run `make airflow-venv`") from None
        with tempfile.TemporaryDirectory() as home:
            env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH"}}
            env.update(AIRFLOW_HOME=home, AIRFLOW__CORE__LOAD_EXAMPLES="False")
            argv = [str(AIRFLOW_PYTHON), __file__, "--repeat", str(args.repeat)]
            argv += ["--folder", str(args.folder.resolve())]
            os.execve(argv[0], argv, env)
    return run(args.folder.resolve(), args.repeat)


if __name__ == "__main__":
    sys.exit(main())
