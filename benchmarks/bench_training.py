"""Training benchmarks on one gold dataset (real parquet, or a generated gold-like frame).

``search`` (default): per algorithm, a plain ``RandomizedSearchCV(n_iter, cv)`` and our search, on
the same preprocessed train window, search space and patient-grouped folds; prints wall time, CPU
time and test-window ROC AUC of each (OOT is sealed: it reports a chosen model, never compares
choices). Both run on joblib's threading backend with BLAS at one thread, so CPU seconds are all
counted in this process and stay comparable on a machine shared with others.

``pipeline``: the whole training pipeline through a real KedroSession, in a throwaway copy of the
project (gold is saved through the project's own ``gold_*@pandas`` catalog entries).

    .venv/bin/python -m benchmarks.bench_training --rows 100000
    .venv/bin/python -m benchmarks.bench_training --gold-features data/04_feature/gold_features \
        --gold-labels data/04_feature/gold_labels
    .venv/bin/python -m benchmarks.bench_training --rows 100000 --mode pipeline --env local
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
from joblib import parallel_config
from kedro.config import OmegaConfigLoader
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import RandomizedSearchCV
from threadpoolctl import threadpool_limits

from readmit_kedro.io.published import PandasPublishedTable
from readmit_kedro.pipelines.training.checks import check_training_data
from readmit_kedro.pipelines.training.config import validate_training_config
from readmit_kedro.pipelines.training.modeling import (
    ESTIMATORS,
    build_estimator,
    parse_search_space,
    patient_folds,
    train_model,
)
from readmit_kedro.pipelines.training.preprocessing import preprocess_training_data
from readmit_kedro.settings import CONFIG_LOADER_ARGS
from tests.support.gold import make_gold_like, month_partitions

PROJECT = Path(__file__).resolve().parents[1]


@contextmanager
def _clock(result: dict, key: str):
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    result[key] = (time.perf_counter() - wall, time.process_time() - cpu)


def _gold(args: argparse.Namespace) -> tuple[pd.DataFrame, pd.DataFrame]:
    if args.gold_features:
        return _read_gold(args.gold_features), _read_gold(args.gold_labels)
    return make_gold_like(args.rows, seed=args.seed)


def _read_gold(path: str) -> pd.DataFrame:
    """A published gold table (the folder holding ``_LATEST``), as the pipeline reads it."""
    if (Path(path) / "_LATEST").exists():
        return PandasPublishedTable(filepath=path).load()
    return pd.read_parquet(path)


def _params(env: str) -> dict:
    loader = OmegaConfigLoader(
        str(PROJECT / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": env}
    )
    return loader["parameters"]


def bench_search(args: argparse.Namespace, features: pd.DataFrame, labels: pd.DataFrame) -> None:
    params = _params(args.env)
    mc, tc = params["model_config"], params["training_config"]
    plan = validate_training_config(
        params["run_date"],
        params["temporal_splits"],
        mc,
        tc,
        **{name: params[name] for name in ESTIMATORS},
    )
    # no digests, no registered models, no champion
    check = check_training_data(features, labels, {}, {}, plan, tc, {}, None)
    gold = month_partitions(features), month_partitions(labels)  # as gold_{table}@partitions
    snapshot = preprocess_training_data(*gold, plan, check, tc, mc)
    X, y, patients = snapshot.arrays("train")
    X_test, y_test, _ = snapshot.arrays("test")
    print(
        f"train rows {len(y)}, test rows {len(y_test)}, features {X.shape[1]}; search "
        f"{mc['n_iter_search']} candidates x {mc['cv_folds']} folds, n_jobs {mc['n_jobs']}"
    )
    rows = []
    for name in args.algorithms:
        config, timing = params[name], {}
        with _clock(timing, "ours"):
            ours, _ = train_model(snapshot, config, mc, tc)
        ours_auc = roc_auc_score(y_test, ours.predict_proba(X_test)[:, 1])
        row = {"algorithm": name, "ours": timing["ours"], "ours_auc": ours_auc}
        if not args.skip_baseline:
            baseline = RandomizedSearchCV(
                build_estimator(config, y, random_state=mc["random_state"], n_jobs=1),
                parse_search_space(config["search_space"]),
                n_iter=mc["n_iter_search"],
                cv=patient_folds(X, y, patients, mc),
                scoring="roc_auc",
                n_jobs=mc["n_jobs"],
                random_state=mc["random_state"],
            )
            with _clock(timing, "baseline"), threadpool_limits(limits=1):
                baseline.fit(X, y)
            baseline_auc = roc_auc_score(y_test, baseline.predict_proba(X_test)[:, 1])
            row |= {"baseline": timing["baseline"], "baseline_auc": baseline_auc}
        rows.append(row)
        _print_row(row)
    if not args.skip_baseline:
        total = {k: tuple(sum(r[k][i] for r in rows) for i in (0, 1)) for k in ("ours", "baseline")}
        worst = min(r["ours_auc"] - r["baseline_auc"] for r in rows)
        (wall, cpu), (ours_wall, ours_cpu) = total["baseline"], total["ours"]
        print(
            f"TOTAL baseline {wall:.0f}s wall / {cpu:.0f}s cpu, ours {ours_wall:.0f}s wall / "
            f"{ours_cpu:.0f}s cpu: speed-up {wall / ours_wall:.1f}x wall, {cpu / ours_cpu:.1f}x "
            f"cpu; worst test AUC difference (ours - baseline) {worst:+.4f}"
        )


def _print_row(row: dict) -> None:
    line = (
        f"{row['algorithm']:<20} ours {row['ours'][0]:7.1f}s wall {row['ours'][1]:7.1f}s cpu "
        f"test AUC {row['ours_auc']:.4f}"
    )
    if "baseline" in row:
        (wall, cpu), (ours_wall, ours_cpu) = row["baseline"], row["ours"]
        line += (
            f" | baseline {wall:7.1f}s wall {cpu:7.1f}s cpu test AUC {row['baseline_auc']:.4f}"
            f" | speed-up {wall / ours_wall:.1f}x wall {cpu / ours_cpu:.1f}x cpu,"
            f" AUC diff {row['ours_auc'] - row['baseline_auc']:+.4f}"
        )
    print(line, flush=True)


def bench_pipeline(args: argparse.Namespace, features: pd.DataFrame, labels: pd.DataFrame) -> None:
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        project = Path(tmp)
        shutil.copy(PROJECT / "pyproject.toml", project)
        shutil.copytree(PROJECT / "conf", project / "conf", ignore=shutil.ignore_patterns("local"))
        (project / "conf" / "local").mkdir()
        (project / "src").mkdir()
        os.chdir(project)
        bootstrap_project(project)
        with KedroSession.create(project_path=project, env=args.env) as session:
            catalog = session.load_context().catalog
            catalog.save("gold_features@pandas", features)
            catalog.save("gold_labels@pandas", labels)
            timing: dict = {}
            with _clock(timing, "run"):
                session.run(pipeline_names=["training"])
            report = catalog.load("champion_report")
        wall, cpu = timing["run"]
        print(
            f"training pipeline (--env {args.env}) on {len(features)} gold rows: "
            f"{wall:.0f}s wall, {cpu:.0f}s cpu"
        )
        for algorithm, candidate in report["candidates"].items():
            print(
                f"{algorithm:<20} "
                + "  ".join(
                    f"{w} ROC AUC {candidate[w]['roc_auc']:.4f} PR AUC {candidate[w]['pr_auc']:.4f}"
                    for w in ("test", "oot")
                )
            )
        print(f"champion: {report['decision']} ({report.get('reason', '')})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gold-features", help="gold feature store: published table or parquet")
    parser.add_argument("--gold-labels", help="gold label store: published table or parquet")
    parser.add_argument("--rows", type=int, default=100_000, help="gold-like rows to generate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--env", default="local", help="conf env (base = the prod search)")
    parser.add_argument("--mode", choices=("search", "pipeline"), default="search")
    parser.add_argument("--algorithms", nargs="+", default=list(ESTIMATORS), choices=ESTIMATORS)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args(argv)
    if bool(args.gold_features) != bool(args.gold_labels):
        parser.error("--gold-features and --gold-labels go together")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    features, labels = _gold(args)
    source = args.gold_features or f"gold-like frame ({args.rows} rows, seed {args.seed})"
    print(f"data: {source}; load average at start {os.getloadavg()}", flush=True)
    with parallel_config(backend="threading"):
        (bench_search if args.mode == "search" else bench_pipeline)(args, features, labels)
    print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
    sys.exit(main())
