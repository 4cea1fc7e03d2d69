"""Estimators, their search spaces, the successive-halving search, and ``train_model`` that runs them.

Why our own halving loop instead of ``HalvingRandomSearchCV``: rungs grow the number of CV folds
as well as the rows (a first rung of 20 candidates needs one fold, not five, to drop the weak ones),
the last rung is capped at ``final_rung_fraction`` of the rows, subsamples hold whole patients, every
rung is scored on the *full* held-out fold (a stable ranking even from small fits), and one line per
finished candidate is logged as it happens. Fits run on threads: trees and BLAS release the GIL, so
there is no worker start-up or data copying, and CPU time stays measurable in one process.
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats
from sklearn.base import BaseEstimator, clone
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, ParameterSampler
from threadpoolctl import threadpool_limits
from xgboost import XGBClassifier

from readmit_kedro.io.model_store import Batches, TrainingSnapshot, frame_arrays
from readmit_kedro.pipelines.training.external_memory import (
    fit_streamed,
    read_columns,
    read_rows,
    training_mode,
)
from readmit_kedro.schema import TARGET

logger = logging.getLogger(__name__)

# Estimator families by name. Each pipeline namespace trains one of them (see pipeline.py).
ESTIMATORS: dict[str, Callable[..., BaseEstimator]] = {
    "logistic_regression": LogisticRegression,
    "random_forest": RandomForestClassifier,
    "xgboost": XGBClassifier,
}
# YAML distribution spec -> scipy distribution; ranges are written as inclusive [low, high].
_DISTRIBUTIONS: dict[str, Callable[[float, float], Any]] = {
    "uniform": lambda low, high: stats.uniform(low, high - low),
    "loguniform": stats.loguniform,
    "randint": lambda low, high: stats.randint(low, high + 1),
}
_MULTITHREADED = frozenset({"random_forest", "xgboost"})  # lbfgs logistic regression is not
BALANCED = "balanced"  # value of xgboost's scale_pos_weight meaning "negatives / positives"
UNTUNED: dict[str, Any] = {"best_params": {}}  # the search report without tuning: config params


def train_model(
    snapshot: TrainingSnapshot,
    algorithm: dict[str, Any],
    model_config: dict[str, Any],
    training_config: dict[str, Any],
) -> tuple[BaseEstimator, dict[str, Any]]:
    """Tune on the train window (CV grouped by patient) and refit; also the search report.

    ``training_config.external_memory`` decides whether the window is loaded whole, or read in
    batches (:func:`~readmit_kedro.pipelines.training.external_memory.training_mode`): then the
    search runs on a patient subsample of at most ``max_in_memory_rows`` rows and XGBoost's refit
    streams every row; an estimator that cannot stream is also refit on that subsample.
    """
    family, tune = algorithm["estimator"], training_config["hyperparameter_tuning"]
    limits = training_config["external_memory"]
    mode, why = training_mode(family, snapshot.rows("train"), limits)
    logger.info("%s trains %s: %s", family, mode.replace("_", " "), why)
    if mode == "in_memory":
        model, report = train_estimator(
            algorithm, snapshot.arrays("train"), model_config, tune=tune, label=family
        )
        return model, {**report, "training_mode": mode}
    features = snapshot.metadata["processed_features"]
    with snapshot.batches("train", limits["batch_rows"]) as read:
        keys = read_columns(read, ["patient_nbr", TARGET])
        seed = model_config["random_state"]
        if mode == "subsample":
            sample = _patient_sample(read, keys, features, limits, seed)
            model, report = train_estimator(
                algorithm, sample, model_config, tune=tune, label=family
            )
            return model, {**report, "training_mode": mode}
        search, search_rows = UNTUNED, 0
        if tune:
            sample = _patient_sample(read, keys, features, limits, seed)
            search = search_estimator(algorithm, sample, model_config, label=family)
            search_rows = len(sample[1])
            del sample
        started = time.perf_counter()
        model = build_estimator(
            algorithm,
            keys[TARGET].to_numpy(),
            random_state=model_config["random_state"],
            n_jobs=model_config["n_jobs"],
        )
        model = fit_streamed(model.set_params(**search["best_params"]), read, features)
    report = _refit_report(algorithm, search, tune, started, len(keys), family)
    return model, {**report, "training_mode": mode, "search_rows": search_rows}


def _patient_sample(
    read: Batches, keys: pd.DataFrame, features: list[str], limits: dict[str, Any], seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(X, y, patients)`` of whole patients, about ``max_in_memory_rows`` rows of the window."""
    rows = subsample_patients(
        np.arange(len(keys)),
        keys["patient_nbr"].to_numpy(),
        limits["max_in_memory_rows"] / len(keys),
        np.random.default_rng(seed),
    )
    return frame_arrays(read_rows(read, ["patient_nbr", *features, TARGET], rows), features)


def train_estimator(
    config: dict[str, Any],
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    model_config: dict[str, Any],
    *,
    tune: bool,
    label: str,
) -> tuple[BaseEstimator, dict[str, Any]]:
    """Search hyperparameters (if ``tune``) and refit the best on all of ``train``; also the report.

    ``train`` is ``(X, y, patient groups)`` as ``TrainingSnapshot.arrays`` gives them. BLAS is held
    to one thread: on a shared 2-core box, OpenBLAS threads spinning against each other made a
    logistic regression fit 15x slower; trees use their own ``n_jobs`` threads.
    """
    X, y, _ = train
    search = search_estimator(config, train, model_config, label=label) if tune else UNTUNED
    started = time.perf_counter()
    with threadpool_limits(limits=1, user_api="blas"):
        model = build_estimator(
            config, y, random_state=model_config["random_state"], n_jobs=model_config["n_jobs"]
        )
        model.set_params(**search["best_params"]).fit(X, y)
    return model, _refit_report(config, search, tune, started, len(y), label)


def search_estimator(
    config: dict[str, Any],
    train: tuple[np.ndarray, np.ndarray, np.ndarray],
    model_config: dict[str, Any],
    *,
    label: str,
) -> dict[str, Any]:
    """The halving search's report on ``train`` (``(X, y, patient groups)``)."""
    X, y, groups = train
    estimator = build_estimator(config, y, random_state=model_config["random_state"], n_jobs=1)
    return halving_search(
        estimator, config["search_space"], X, y, groups, model_config, label=label
    )


def _refit_report(
    config: dict[str, Any],
    search: dict[str, Any],
    tune: bool,
    started: float,
    rows: int,
    label: str,
) -> dict[str, Any]:
    refit_seconds = time.perf_counter() - started
    logger.info("%s refit on %d rows in %.0fs", label, rows, refit_seconds)
    return {**search, "tuned": tune, "refit_seconds": refit_seconds, "refit_rows": rows,
            "params": {**(config.get("params") or {}), **search["best_params"]}}  # fmt: skip


def check_algorithm_config(config: dict[str, Any]) -> list[str]:
    """Problems in one algorithm's ``estimator``, ``params`` and ``search_space`` (or none)."""
    family = config.get("estimator")
    if family not in ESTIMATORS:
        return [f"unknown estimator {family!r}; supported: {list(ESTIMATORS)}"]
    params = config.get("params") or {}
    space = config.get("search_space") or {}
    valid = set(ESTIMATORS[family]().get_params())
    problems = [
        f"unknown {family} parameter {key!r}" for key in [*params, *space] if key not in valid
    ]
    for key, spec in space.items():
        try:
            _distribution(spec)
        except (TypeError, ValueError) as exc:
            problems.append(f"search_space.{key}: {exc}")
    return problems


def parse_search_space(space: dict[str, Any]) -> dict[str, Any]:
    """Turn the YAML search space into what ``ParameterSampler`` takes (lists or distributions)."""
    return {key: _distribution(spec) for key, spec in space.items()}


def _distribution(spec: Any) -> Any:
    if isinstance(spec, list) and spec:
        return spec
    if isinstance(spec, dict) and len(spec) == 1:
        ((kind, bounds),) = spec.items()
        if kind in _DISTRIBUTIONS and isinstance(bounds, list) and len(bounds) == 2:
            low, high = bounds
            if low < high:
                return _DISTRIBUTIONS[kind](low, high)
            raise ValueError(f"{kind} needs low < high, got {bounds}")
    raise ValueError(
        f"expected a non-empty list of choices or one of {list(_DISTRIBUTIONS)}: [low, high], "
        f"got {spec!r}"
    )


def build_estimator(
    config: dict[str, Any], y: np.ndarray, *, random_state: int, n_jobs: int
) -> BaseEstimator:
    """An unfitted estimator from its config; class imbalance is resolved against labels ``y``."""
    params = {**(config.get("params") or {}), "random_state": random_state}
    if config["estimator"] in _MULTITHREADED:
        params["n_jobs"] = n_jobs
    if params.get("scale_pos_weight") == BALANCED:
        positives = int(np.sum(y))
        params["scale_pos_weight"] = (len(y) - positives) / max(positives, 1)
    return ESTIMATORS[config["estimator"]](**params)


def patient_folds(
    X: np.ndarray, y: np.ndarray, groups: np.ndarray, model_config: dict[str, Any]
) -> list[tuple[np.ndarray, np.ndarray]]:
    """CV folds with every patient's encounters in one fold only (shuffled ``GroupKFold``).

    ``StratifiedGroupKFold`` took 30 s to split 57k rows of 40k patients; with that many small
    groups a shuffled group split already keeps the label rate within ~2% (relative) per fold.
    """
    splitter = GroupKFold(
        model_config["cv_folds"], shuffle=True, random_state=model_config["random_state"]
    )
    return list(splitter.split(X, y, groups))


def halving_schedule(
    n_candidates: int, cv_folds: int, factor: int, final_fraction: float
) -> list[tuple[int, int, float]]:
    """Rungs as (candidates, folds, share of each training fold), widest rung first.

    Each rung keeps the best ``1/factor`` of its candidates and gives them ``factor`` times more
    rows and folds, until at most ``factor`` candidates remain. The last rung is a full
    ``cv_folds``-fold CV on ``final_fraction`` of every training fold; the first rungs only need
    to drop clearly weak candidates, so one or two folds on a small sample are enough there.
    """
    counts = [n_candidates]
    while counts[-1] > factor:
        counts.append(math.ceil(counts[-1] / factor))
    last = len(counts) - 1
    return [
        (count, math.ceil(cv_folds / factor ** (last - i)), final_fraction / factor ** (last - i))
        for i, count in enumerate(counts)
    ]


def halving_search(
    estimator: BaseEstimator,
    search_space: dict[str, Any],
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    model_config: dict[str, Any],
    *,
    label: str,
) -> dict[str, Any]:
    """Successive-halving random search, cross-validated by patient, scored by ROC AUC.

    Returns the best parameters, its CV score on the last rung and one history row per evaluation.
    """
    seed = model_config["random_state"]
    sampler = ParameterSampler(
        parse_search_space(search_space), model_config["n_iter_search"], random_state=seed
    )
    # Plain Python values, so the chosen parameters serialise to JSON as they are.
    candidates = [{k: _plain(v) for k, v in c.items()} for c in sampler]
    folds = patient_folds(X, y, groups, model_config)
    schedule = halving_schedule(
        len(candidates),
        len(folds),
        model_config["halving_factor"],
        model_config["final_rung_fraction"],
    )
    rng = np.random.default_rng(seed)
    alive = list(range(len(candidates)))
    history: list[dict[str, Any]] = []
    started = time.perf_counter()
    with (
        threadpool_limits(limits=1),
        Parallel(
            n_jobs=model_config["n_jobs"], prefer="threads", return_as="generator_unordered"
        ) as parallel,
    ):
        for rung, (count, n_folds, fraction) in enumerate(schedule, start=1):
            rung_folds = [
                (subsample_patients(train, groups, fraction, rng), test)
                for train, test in folds[:n_folds]
            ]
            scores: dict[int, list[float]] = {}
            for candidate, fold_scores in _finished_candidates(
                parallel, estimator, candidates, alive[:count], X, y, rung_folds
            ):
                scores[candidate] = fold_scores
                best = max(np.mean(s) for s in scores.values())
                logger.info(
                    "%s rung %d/%d (%d folds x %d rows) candidate %d/%d: roc_auc %.4f ± %.4f, "
                    "best so far %.4f, %.0fs, %s", label, rung, len(schedule), n_folds,
                    len(rung_folds[0][0]),
                    len(scores), count, np.mean(fold_scores), np.std(fold_scores), best,
                    time.perf_counter() - started, candidates[candidate],
                )  # fmt: skip
                history.append(
                    {"rung": rung, "folds": n_folds, "fraction": fraction, "candidate": candidate,
                     "params": candidates[candidate], "mean_roc_auc": float(np.mean(fold_scores)),
                     "std_roc_auc": float(np.std(fold_scores))}
                )  # fmt: skip
            alive = sorted(scores, key=lambda c: np.mean(scores[c]), reverse=True)
    best_candidate, best_score = alive[0], float(np.mean(scores[alive[0]]))
    seconds = time.perf_counter() - started
    logger.info("%s search done in %.0fs: best roc_auc %.4f with %s", label, seconds, best_score,
                candidates[best_candidate])  # fmt: skip
    return {
        "best_params": candidates[best_candidate],
        "best_cv_roc_auc": best_score,
        "schedule": [{"candidates": c, "folds": k, "fraction": f} for c, k, f in schedule],
        "cv_folds": len(folds),
        "seconds": seconds,
        "history": history,
    }


def _finished_candidates(parallel, estimator, candidates, alive, X, y, folds):
    """Fit every (candidate, fold) in parallel; yield a candidate once all its folds are scored."""
    results = parallel(
        delayed(_fit_and_score)(estimator, candidates[c], X, y, train, test, c)
        for c in alive
        for train, test in folds
    )
    pending: dict[int, list[float]] = defaultdict(list)
    for candidate, score in results:
        pending[candidate].append(score)
        if len(pending[candidate]) == len(folds):
            yield candidate, pending.pop(candidate)


def _fit_and_score(estimator, params, X, y, train, test, candidate) -> tuple[int, float]:
    model = clone(estimator).set_params(**params).fit(X[train], y[train])
    return candidate, float(roc_auc_score(y[test], model.predict_proba(X[test])[:, 1]))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def subsample_patients(
    rows: np.ndarray, groups: np.ndarray, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Keep about ``fraction`` of ``rows`` by drawing whole patients, never part of one."""
    if fraction >= 1:
        return rows
    patients, inverse = np.unique(groups[rows], return_inverse=True)
    keep = rng.random(len(patients)) < fraction
    return rows[keep[inverse]]
