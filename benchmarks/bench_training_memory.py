"""Peak memory (PSS) of the memory-heavy training tasks on gold-like data, and where 4 GB runs out.

Each ECS task runs one node, so the tasks are measured as separate processes, each sampled from
/proc (``bench_data_processing._tree_pss_mb``): ``preprocess`` (gold, published by admission month
as data processing does, → signed snapshot: the ``preprocess_training_data`` node in memory, as
below ``external_memory.max_in_memory_rows``), ``preprocess_batched`` (the same node past that
limit: gold read a partition at a time, the preprocessor fitted on a patient sample of about
``max_in_memory_rows`` train rows, the train window processed and written batch by batch),
``train`` (snapshot load → XGBoost refit in memory, the
``xgboost.train_model`` node, no search unless ``--tune``: the search's fold copies come on top) and
``train_extmem`` (the same node with ``external_memory.enabled: true``: the refit streams the train
window's batches into an ``ExtMemQuantileDMatrix``), ``champion`` (the ``score_current_champion``
and ``build_champion_reference`` nodes one after the other, gold read as the configuration says:
a partition at a time past ``max_in_memory_rows``; the champion is an XGBoost bundle made from the
snapshot beforehand, unmeasured) and ``champion_whole`` (the same with gold read whole, as before
the limit existed). Prints one JSON line per size and task, then
a summary with a least-squares line per task and the train-window rows at which the first task
reaches ``--limit-mb``.

    python -m benchmarks.bench_training_memory --rows 50000 100000 200000
    python -m benchmarks.bench_training_memory --rows 100000 200000 400000 --tasks train train_extmem
    python -m benchmarks.bench_training_memory --rows 700000 --tasks train_extmem --tune --env dev
    python -m benchmarks.bench_training_memory --rows 200000 400000 1000000 --tasks preprocess_batched
    python -m benchmarks.bench_training_memory --rows 400000 1000000 --tasks champion champion_whole
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_data_processing import _run_measured
from benchmarks.bench_training import _params

PROJECT = Path(__file__).resolve().parents[1]
TASKS = ("preprocess", "preprocess_batched", "train", "train_extmem", "champion", "champion_whole")
# made before the champion tasks, not reported: the incumbent they re-score
MAKE_CHAMPION = "make_champion"


def _child(task: str, work: Path, env: str, tune: bool) -> None:
    """One task in this process, as its ECS container runs it (no sampling here)."""
    from readmit_kedro.io.model_store import TrainingSnapshotDataset
    from readmit_kedro.io.published import PandasPublishedPartitions, PandasPublishedTable
    from readmit_kedro.io.registry import LoadedModel
    from readmit_kedro.pipelines.training.champion import (
        build_champion_reference,
        score_current_champion,
    )
    from readmit_kedro.pipelines.training.checks import WINDOW_COLUMNS, check_training_data
    from readmit_kedro.pipelines.training.config import validate_training_config
    from readmit_kedro.pipelines.training.modeling import ESTIMATORS, train_model
    from readmit_kedro.pipelines.training.preprocessing import (
        preprocess_in_batches,
        preprocess_training_data,
    )

    params = _params(env)
    mc, tc = params["model_config"], {**params["training_config"], "hyperparameter_tuning": tune}
    options = {
        "path": str(work / "snapshot"),
        "signing": {"backend": "ed25519", "filepath": str(work / "k.pem")},
    }
    store = TrainingSnapshotDataset(**options)
    plan, check, gold = None, None, None
    if task.startswith(("preprocess", "champion")):
        stores = [str(work / name) for name in ("features", "labels")]
        window = [  # what gold_{table}@window reads for the check
            PandasPublishedTable(filepath=root, load_args={"columns": list(columns)}).load()
            for root, columns in zip(stores, WINDOW_COLUMNS, strict=True)
        ]
        gold = [PandasPublishedPartitions(filepath=root).load() for root in stores]
        plan = validate_training_config(
            params["run_date"], params["temporal_splits"], mc, tc,
            **{name: params[name] for name in ESTIMATORS},
        )  # fmt: skip
        check = check_training_data(*window, {}, {}, plan, tc, {}, None)
        del window
    if task.startswith("preprocess"):
        limit = tc["external_memory"]["max_in_memory_rows"]
        if task == "preprocess":
            in_memory = {**tc, "external_memory": {**tc["external_memory"], "enabled": False}}
            snapshot = preprocess_training_data(*gold, plan, check, in_memory, mc)
        else:
            snapshot = preprocess_in_batches(*gold, plan, check, tc, mc, fit_rows=limit)
        shape = {
            "train_rows": snapshot.rows("train"),
            "features": len(snapshot.metadata["processed_features"]),
        }
        store.save(snapshot)
        (work / "shape.json").write_text(json.dumps(shape))
    elif task == MAKE_CHAMPION:
        _make_champion(store.load(), tc, work / "champion.pkl")
    elif task.startswith("champion"):
        champion = LoadedModel(
            {"algorithm": "xgboost", "version": "bench", "sha256": "-", "history_id": "-"},
            pickle.loads((work / "champion.pkl").read_bytes()),
        )
        if task == "champion_whole":
            whole = {**tc["external_memory"], "enabled": False}
            tc = {**tc, "external_memory": whole}
        score_current_champion(champion, *gold, store.load(), plan, check, tc)
        profile = params["reference_profile_config"]
        build_champion_reference(champion, *gold, plan, check, tc, profile)
    else:
        streaming = {**tc["external_memory"], "enabled": task == "train_extmem"}
        train_model(store.load(), params["xgboost"], mc, {**tc, "external_memory": streaming})


def _make_champion(snapshot: Any, training_config: dict, path: Path) -> None:
    """A small XGBoost bundle (preprocessor, estimator, calibrator) fitted on the test window.

    Only its scoring cost matters to the champion tasks, not its quality.
    """
    from xgboost import XGBClassifier

    from readmit_kedro.pipelines.training.evaluation import evaluate_model, model_bundle

    X, y, _ = snapshot.arrays("test")
    estimator = XGBClassifier(n_estimators=50, max_depth=4, n_jobs=2).fit(X, y)
    _, calibrator = evaluate_model(estimator, snapshot, training_config)
    path.write_bytes(pickle.dumps(model_bundle(estimator, calibrator, snapshot)))


def measure(rows: int, seed: int, env: str, tasks: list[str], tune: bool) -> list[dict]:
    """Peak RSS of each task on ``rows`` gold-like encounters."""
    from tests.support.gold import make_gold_like, publish_by_month

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-training-memory-") as tmp:
        work = Path(tmp)
        features, labels = make_gold_like(rows, seed=seed)
        publish_by_month(features, work / "features")
        publish_by_month(labels, work / "labels")
        del features, labels
        # a preprocess task makes the snapshot the others read; the champion comes from it
        order = [*([] if tasks[0].startswith("preprocess") else ["preprocess"]), *tasks]
        champion_tasks = [i for i, task in enumerate(order) if task.startswith("champion")]
        if champion_tasks:
            order.insert(champion_tasks[0], MAKE_CHAMPION)
        for task in order:
            load = os.getloadavg()[0]
            command = [sys.executable, "-m", "benchmarks.bench_training_memory", "--child", task,
                       "--work", str(work), "--env", env, *(["--tune"] if tune else [])]  # fmt: skip
            seconds, peak = _run_measured(command, PROJECT)
            if task == MAKE_CHAMPION:
                continue
            results.append({"task": task, "gold_rows": rows, "seconds": round(seconds, 1),
                            "peak_pss_mb": round(peak), "load_1m": [load, os.getloadavg()[0]]})  # fmt: skip
        shape = json.loads((work / "shape.json").read_text())
    return [{**r, **shape} for r in results]


def summarise(results: list[dict], limit_mb: float) -> dict:
    """Per task a line ``peak = a + b * train_rows``; the train rows where the first task hits the limit."""
    summary: dict = {"limit_mb": limit_mb, "features": results[-1]["features"], "fits": {}}
    for task in dict.fromkeys(r["task"] for r in results):
        points = [(r["train_rows"], r["peak_pss_mb"]) for r in results if r["task"] == task]
        slope, intercept = np.polyfit(*zip(*points, strict=True), 1)
        summary["fits"][task] = {
            "mb_at_0": round(intercept), "kb_per_train_row": round(slope * 1024, 2),
            # None: the peak does not grow with the rows (within the measurement's noise)
            "train_rows_at_limit": int((limit_mb - intercept) / slope) if slope > 0 else None,
        }  # fmt: skip
    summary["train_rows_at_limit"] = min(
        fit["train_rows_at_limit"]
        for fit in summary["fits"].values()
        if fit["train_rows_at_limit"] is not None
    )
    gold_per_train = np.mean([r["gold_rows"] / r["train_rows"] for r in results])
    summary["gold_rows_at_limit"] = int(summary["train_rows_at_limit"] * gold_per_train)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[50_000, 100_000, 200_000])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--env", default="base")
    parser.add_argument("--tasks", nargs="+", default=["train", "train_extmem"], choices=TASKS)
    # 4096 MB task memory less ~300 MB for the container runtime, page cache and headroom (assumed)
    parser.add_argument("--limit-mb", type=float, default=3800)
    # the env's search before the refit (on a patient subsample for train_extmem); default: refit only
    parser.add_argument("--tune", action="store_true")
    parser.add_argument("--child", choices=(*TASKS, MAKE_CHAMPION), help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return _child(args.child, args.work, args.env, args.tune)
    results = []
    for rows in args.rows:
        for result in measure(rows, args.seed, args.env, args.tasks, args.tune):
            print(json.dumps(result), flush=True)
            results.append(result)
    print(json.dumps(summarise(results, args.limit_mb)), flush=True)


if __name__ == "__main__":
    sys.exit(main())
