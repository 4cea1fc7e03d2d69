"""Training configuration: validated once, before any data is read, and resolved into a plan.

The plan (a small JSON-able dict) pins everything that depends on ``run_date`` - the concrete
train/test/OOT years and the label cut-off - so every later task of the run agrees on them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from itertools import pairwise
from typing import Any

from readmit_kedro.pipelines.training.modeling import ESTIMATORS, check_algorithm_config
from readmit_kedro.run_context import (
    ConfigError,
    Problems,
    RunDate,
    is_int,
    is_number,
    is_probability,
)

logger = logging.getLogger(__name__)

WINDOWS: tuple[str, ...] = ("train", "test", "oot")  # in time order: the overlap check relies on it
WINDOW_MODES: tuple[str, ...] = ("absolute", "relative")
# Champion metrics and whether a higher value is better.
METRICS: dict[str, bool] = {
    "roc_auc": True,
    "pr_auc": True,
    "f1": True,
    "brier": False,
    "log_loss": False,
}


class TrainingConfigError(ConfigError):
    """The training parameters cannot produce a valid run; the message says which key and why."""


def validate_training_config(
    run_date: str,
    temporal_splits: dict[str, Any],
    model_config: dict[str, Any],
    training_config: dict[str, Any],
    **algorithm_configs: dict[str, Any],
) -> dict[str, Any]:
    """Fail before any data is read if the parameters cannot give a valid run; else the plan.

    Every problem is reported at once, so one failed run lists all the keys to fix.
    """
    try:
        run_day = RunDate.parse(run_date)
    except ConfigError as error:  # every training parameter fault is a TrainingConfigError
        raise TrainingConfigError(str(error)) from None
    run_year = run_day.day.year
    splits = Problems("temporal_splits", temporal_splits)
    windows = _resolve_windows(splits, run_year)
    horizon = splits.check("label_horizon_days", is_int(0), "must be an int >= 0")
    problems = [
        *splits.messages,
        *_window_order_problems(windows, run_year),
        *_model_config_problems(model_config),
        *_training_config_problems(training_config),
    ]
    for name in ESTIMATORS:
        if name not in algorithm_configs:
            problems.append(f"parameters for algorithm {name!r} are missing (key {name}:)")
        else:
            problems += [f"{name}: {p}" for p in check_algorithm_config(algorithm_configs[name])]
    if problems:
        raise TrainingConfigError("invalid training config:\n  - " + "\n  - ".join(problems))
    # What, besides the data, decides the models: a run that matches the last one on this and on
    # the train/test rows would reproduce it (check_training_data declines it).
    fitting = {
        "windows": {name: windows[name] for name in ("train", "test")},
        "label_horizon_days": horizon,
        "model_config": model_config,
        "training_config": training_config,
        "algorithms": algorithm_configs,
    }
    plan = {
        "run_date": run_day.iso,
        "window_mode": temporal_splits["mode"],
        "windows": windows,
        "label_horizon_days": horizon,
        "algorithms": list(training_config["algorithms"]),
        "parameters_sha256": hashlib.sha256(
            json.dumps(fitting, sort_keys=True, default=str).encode()
        ).hexdigest(),
    }
    logger.info("training plan: %s", plan)
    return plan


def _resolve_windows(splits: Problems, run_year: int) -> dict[str, dict[str, int]]:
    """Concrete start/end years per window; a window whose spec is unusable is left out."""
    mode = splits.check("mode", lambda v: v in WINDOW_MODES, f"must be one of {WINDOW_MODES}")
    if mode not in WINDOW_MODES:
        return {}
    keys = (
        ("start_year", "end_year") if mode == "absolute" else ("start_years_back", "end_years_back")
    )
    spec = splits.config.get(mode) or {}
    windows: dict[str, dict[str, int]] = {}
    for name in WINDOWS:
        window = spec.get(name)
        if not isinstance(window, dict) or not all(isinstance(window.get(k), int) for k in keys):
            splits.add(f"{mode}.{name} needs integer {keys[0]} and {keys[1]}")
            continue
        if mode == "absolute":
            start, end = window["start_year"], window["end_year"]
        else:
            start, end = run_year - window["start_years_back"], run_year - window["end_years_back"]
        windows[name] = {"start_year": start, "end_year": end}
    return windows


def _window_order_problems(windows: dict[str, dict[str, int]], run_year: int) -> list[str]:
    if len(windows) < len(WINDOWS):
        return []  # the missing windows are reported already
    problems = []
    for name, window in windows.items():
        if window["start_year"] > window["end_year"]:
            problems.append(f"window {name} starts after it ends: {_years(window)}")
        if window["start_year"] > run_year:
            problems.append(
                f"window {name} ({_years(window)}) starts after run_date's year {run_year}"
            )
    for earlier, later in pairwise(WINDOWS):
        if windows[earlier]["end_year"] >= windows[later]["start_year"]:
            problems.append(
                f"windows must be in order without overlap: {earlier} {_years(windows[earlier])} "
                f"overlaps or follows {later} {_years(windows[later])}"
            )
    return problems


def _years(window: dict[str, int]) -> str:
    return f"{window['start_year']}-{window['end_year']}"


def _model_config_problems(config: dict[str, Any]) -> list[str]:
    problems = Problems("model_config", config)
    for key, valid in {
        "random_state": is_int(),
        "cv_folds": is_int(2),
        "n_iter_search": is_int(1),
        "n_jobs": is_int(1),
        "halving_factor": is_int(2),
        "final_rung_fraction": lambda v: is_number(high=1)(v) and v > 0,
    }.items():
        problems.check(key, valid, "is invalid")
    return problems.messages


def _training_config_problems(config: dict[str, Any]) -> list[str]:
    problems = Problems("training_config", config)
    algorithms = problems.check(
        "algorithms", lambda v: isinstance(v, list) and v, "must be a non-empty list"
    )
    if isinstance(algorithms, list):
        unknown = [a for a in algorithms if a not in ESTIMATORS]
        if unknown:
            problems.add(
                f"algorithms has unknown algorithm(s) {unknown}; supported: {list(ESTIMATORS)}"
            )
        if len(set(algorithms)) != len(algorithms):
            problems.add(f"algorithms has duplicates: {algorithms}")
    for key in ("hyperparameter_tuning", "feature_selection"):
        problems.check(key, lambda v: isinstance(v, bool), "must be true or false")
    problems.check("prediction_threshold", is_probability, "must be in (0, 1)")
    evaluation = _block(problems, "evaluation")
    for key, valid in {
        "calibration_folds": is_int(2),
        "bootstrap_resamples": is_int(20),
        "interval_level": is_probability,
        "seed": is_int(),
    }.items():
        evaluation.check(key, valid, "is invalid")
    champion = _block(problems, "champion")
    champion.check("metric", lambda v: v in METRICS, f"must be one of {list(METRICS)}")
    champion.check("tolerance", is_number(0), "must be >= 0")
    requirements = _block(problems, "data_requirements")
    for key in ("min_partitions", "min_rows_per_window"):
        requirements.check(key, is_int(1), "must be an int >= 1")
    preprocessing = _block(problems, "preprocessing")
    preprocessing.check(
        "rare_category_min_frequency",
        lambda v: isinstance(v, float) and 0 <= v < 1,
        "must be a share in [0, 1)",
    )
    preprocessing.check("feature_selection_c", lambda v: is_number()(v) and v > 0, "must be > 0")
    external = _block(problems, "external_memory")
    external.check(
        "enabled", lambda v: v == "auto" or isinstance(v, bool), "must be auto, true or false"
    )
    for key in ("max_in_memory_rows", "batch_rows"):
        external.check(key, is_int(1), "must be an int >= 1")
    return [
        *problems.messages,
        *evaluation.messages,
        *champion.messages,
        *requirements.messages,
        *preprocessing.messages,
        *external.messages,
    ]


def _block(parent: Problems, key: str) -> Problems:
    """The checks of a nested block, so its messages name the full key (``a.b.c``)."""
    return Problems(f"{parent.section}.{key}", parent.config.get(key))
