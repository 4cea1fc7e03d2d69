"""Scoring throughput and wall time of the inference pipeline on ~100k gold encounters.

    .venv/bin/python -m benchmarks.bench_inference [--rows 100000] [--algorithm xgboost]
        [--gold DATA_DIR] [--registry DIR] [--seed 0] [--keep DIR]

Targets: scoring >= 200,000 rows/s with the champion; ``kedro run --pipelines inference`` on
~100k encounters in < 20 s wall, Kedro start-up included.

Builds a throwaway project copy (as tests/conftest.py's ``kedro_project`` does) with gold - the
published gold stores under ``--gold`` (e.g. ``data`` after a real data_processing run), else
``rows`` synthetic encounters of 1999-2008 (``training.synthetic.make_gold_like``) - and a registry:
the one under ``--registry``, else a quick champion trained here the way training builds one
(its preprocessor and estimator fitted on 1999-2005, calibrated on 2006-2007 as a
``CalibratedModel``), registered and promoted. Then, with every encounter up to 2008-12-31 new:

1. scoring, in this process: the ``score_encounters`` node (bundle reload with its hash check,
   input checks, batches of ``batch_size``, prediction rows), best of 3; and one pass split into
   the bundle's preprocessor, its estimator and the calibrator;
2. ``kedro run --pipelines inference`` in a fresh process, as an Airflow task pays it;
3. the next day's run: nothing new to predict (the usual daily no-op).

Exits 1 when a run fails or a target is missed. The machine may be shared: the load average is
printed next to the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline

from readmit_kedro.io.model_store import ServingModelDataset
from readmit_kedro.io.predictions import PredictionsDataset
from readmit_kedro.io.published import PandasPublishedTable
from readmit_kedro.io.registry import ModelRegistry
from readmit_kedro.model.calibration import CalibratedModel, calibrate
from readmit_kedro.pipelines.inference.nodes import (
    resolve_model,
    score_encounters,
    select_new_encounters,
)
from readmit_kedro.pipelines.training.modeling import build_estimator
from readmit_kedro.pipelines.training.preprocessing import fit_preprocessor, join_gold
from readmit_kedro.schema import FEATURE_COLUMNS, TARGET
from tests.support.gold import make_gold_like

ROOT = Path(__file__).resolve().parents[1]
RUN_DATE = "2008-12-31"
NEXT_DAY = "2009-01-01"  # the next daily run: no gold encounter is new by then
TARGET_ROWS_PER_S = 200_000
TARGET_WALL_S = 20.0
GOLD_TABLES = ("gold_features", "gold_labels")
# Mid-range points of conf/base/parameters_training.yml's search spaces.
ESTIMATORS: dict[str, dict[str, Any]] = {
    "xgboost": {
        "estimator": "xgboost",
        "params": {"tree_method": "hist", "scale_pos_weight": "balanced", "verbosity": 0,
                   "n_estimators": 300, "max_depth": 5, "learning_rate": 0.05,
                   "subsample": 0.8, "colsample_bytree": 0.7},
    },
    "logistic_regression": {
        "estimator": "logistic_regression",
        "params": {"solver": "newton-cholesky", "max_iter": 1000, "class_weight": "balanced",
                   "C": 0.1},
    },
    "random_forest": {
        "estimator": "random_forest",
        "params": {"class_weight": "balanced_subsample", "n_estimators": 200, "max_depth": 10,
                   "min_samples_leaf": 50, "max_features": "sqrt"},
    },
}  # fmt: skip


def write_gold(project: Path, gold: Path | None, rows: int, seed: int) -> None:
    target = project / "data/04_feature"
    if gold is not None:
        for table in GOLD_TABLES:
            shutil.copytree(gold / "04_feature" / table, target / table)
        return
    for table, frame in zip(GOLD_TABLES, make_gold_like(rows, seed=seed), strict=True):
        PandasPublishedTable(filepath=str(target / table), partition_by=["admission_year"]).save(
            frame
        )


def train_champion(project: Path, algorithm: str, params: dict[str, Any]) -> None:
    """A champion built the way training builds one, then calibrated on the test window."""
    features, labels = (
        PandasPublishedTable(filepath=str(project / "data/04_feature" / t)).load()
        for t in GOLD_TABLES
    )
    gold = join_gold(features, labels)
    year = gold["admission_date"].dt.year
    train, calibration = gold[year <= 2005], gold[year.between(2006, 2007)]
    preprocessing = params["training_config"]["preprocessing"]
    seed = params["model_config"]["random_state"]
    preprocessor = fit_preprocessor(train, preprocessing, feature_selection=False, seed=seed)
    y = train[TARGET].to_numpy()
    estimator = build_estimator(ESTIMATORS[algorithm], y, random_state=seed, n_jobs=2)
    estimator.fit(preprocessor.transform(train[list(FEATURE_COLUMNS)]), y)
    bundle = calibrate(
        Pipeline([("preprocess", preprocessor), ("model", estimator)]),
        calibration,
        calibration[TARGET].to_numpy(),
    )
    registry = ModelRegistry(str(project / "data/06_models/registry"))
    record = registry.register(algorithm, bundle, metrics={}, metadata={"run_date": RUN_DATE})
    registry.promote(algorithm, record["version"], "bench_inference quick champion")


def time_scoring(
    project: Path, config: dict[str, Any]
) -> tuple[int, tuple[float, float], dict[str, float]]:
    """Rows, best (wall, CPU) seconds of the ``score_encounters`` node, one pass by component."""
    serving = ServingModelDataset(path=str(project / "data/06_models/registry")).load()
    model = resolve_model(serving, config)
    features = PandasPublishedTable(filepath=str(project / "data/04_feature/gold_features")).load()
    empty_store = PredictionsDataset(path=str(project / "no-store.parquet")).load()
    encounters = select_new_encounters(features, empty_store, model, RUN_DATE)
    best = min(
        _wall_and_cpu(lambda: score_encounters(encounters, serving, model, config, RUN_DATE))
        for _ in range(3)
    )
    bundle = serving.model
    split: dict[str, float] = {}
    if isinstance(bundle, CalibratedModel) and isinstance(bundle.model, Pipeline):
        X = encounters[model["feature_columns"]]
        size = config["batch_size"]
        batches = [X.iloc[i : i + size] for i in range(0, len(X), size)]
        preprocess, estimator = bundle.model[:-1], bundle.model[-1]
        split["preprocessor"] = _seconds(lambda: [preprocess.transform(b) for b in batches])
        processed = [preprocess.transform(b) for b in batches]
        split["estimator"] = _seconds(lambda: [estimator.predict_proba(p) for p in processed])
        scores = np.concatenate([estimator.predict_proba(p)[:, 1] for p in processed])
        split["calibrator"] = _seconds(lambda: bundle.calibrator.predict_with_interval(scores))
    return len(encounters), best, split


def kedro_run(project: Path, run_date: str) -> tuple[float, float, dict[str, Any]]:
    """Wall and CPU seconds of one ``kedro run --pipelines inference``, and its signal."""
    command = [
        str(Path(sys.executable).with_name("kedro")), "run", "--pipelines", "inference",
        "--params", f"run_date={run_date}",
    ]  # fmt: skip
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    cpu_before = _children_cpu()
    started = time.perf_counter()
    run = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if run.returncode != 0:
        print(run.stdout[-3000:], run.stderr[-3000:], sep="\n")
        raise SystemExit(1)
    signal = json.loads((project / "data/08_reporting/signals/inference.json").read_text())
    return wall, _children_cpu() - cpu_before, signal


def _seconds(step) -> float:
    return _wall_and_cpu(step)[0]


def _wall_and_cpu(step) -> tuple[float, float]:
    """Wall and CPU (all threads of this process) seconds of ``step()``."""
    started, cpu = time.perf_counter(), time.process_time()
    step()
    return time.perf_counter() - started, time.process_time() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="synthetic gold encounters")
    parser.add_argument("--gold", type=Path, help="data folder holding published gold stores")
    parser.add_argument("--registry", type=Path, help="registry whose champion scores")
    parser.add_argument("--algorithm", choices=sorted(ESTIMATORS), default="xgboost")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=Path, help="build the project here and keep it")
    args = parser.parse_args()

    from kedro.config import OmegaConfigLoader

    params = OmegaConfigLoader(str(ROOT / "conf"), base_env="base", default_run_env="base")[
        "parameters"
    ]
    project = args.keep or Path(tempfile.mkdtemp(prefix="bench-inference-"))
    project.mkdir(parents=True, exist_ok=True)
    try:
        for name in ("pyproject.toml", ".telemetry"):
            shutil.copy(ROOT / name, project / name)
        shutil.copytree(ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
        (project / "conf/local").mkdir()
        (project / "src").mkdir()
        started = time.perf_counter()
        write_gold(project, args.gold, args.rows, args.seed)
        if args.registry:
            shutil.copytree(args.registry, project / "data/06_models/registry")
        else:
            train_champion(project, args.algorithm, params)
        print(f"inputs: gold and champion ready in {time.perf_counter() - started:.1f} s")

        rows, (seconds, cpu_seconds), split = time_scoring(project, params["inference_config"])
        throughput = rows / seconds
        parts = ", ".join(f"{k} {rows / v:,.0f} rows/s ({v:.2f} s)" for k, v in split.items())
        print(
            f"scoring: {rows} encounters in {seconds:.2f} s = {throughput:,.0f} rows/s "
            f"(target >= {TARGET_ROWS_PER_S:,}), CPU {cpu_seconds:.2f} s = "
            f"{rows / cpu_seconds:,.0f} rows per CPU-second; one pass by component: "
            f"{parts or 'n/a'}"
        )
        wall, cpu, signal = kedro_run(project, RUN_DATE)
        print(
            f"kedro run (all new): {signal['rows_scored']} rows scored, wall {wall:.1f} s "
            f"(target < {TARGET_WALL_S:.0f} s), CPU {cpu:.1f} s"
        )
        again, cpu_again, signal_again = kedro_run(project, NEXT_DAY)
        print(
            f"kedro run (next day, nothing new): {signal_again['rows_scored']} rows scored, wall "
            f"{again:.1f} s, CPU {cpu_again:.1f} s; load average {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} cores"
        )
        ok = throughput >= TARGET_ROWS_PER_S and wall < TARGET_WALL_S
        return 0 if ok and signal_again["rows_scored"] == 0 else 1
    finally:
        if args.keep is None:
            shutil.rmtree(project, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
