"""Training configuration: validated once, before any data is read, and resolved into a plan.

The plan (a small JSON-able dict) pins everything that depends on ``run_date`` - the concrete
train/test/OOT years and the label cut-off - so every later task of the run agrees on them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from itertools import pairwise
from typing import Any

from readmit_kedro.pipelines.training.modeling import ESTIMATORS, check_algorithm_config

WINDOWS: tuple[str, ...] = ("train", "test", "oot")
WINDOW_MODES: tuple[str, ...] = ("absolute", "relative")
# Champion metrics and whether a higher value is better.
METRICS: dict[str, bool] = {
    "roc_auc": True,
    "pr_auc": True,
    "f1": True,
    "brier": False,
    "log_loss": False,
}


class TrainingConfigError(ValueError):
    """The training parameters cannot produce a valid run; the message says which key and why."""


def build_training_plan(
    run_date: str,
    temporal_splits: dict[str, Any],
    model_config: dict[str, Any],
    training_config: dict[str, Any],
    algorithm_configs: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Check every training parameter and return the resolved plan, or raise with all problems."""
    problems: list[str] = []
    try:
        run_day = date.fromisoformat(str(run_date))
    except ValueError:
        raise TrainingConfigError(
            f"run_date {run_date!r} is not an ISO date (YYYY-MM-DD)"
        ) from None
    windows = _resolve_windows(temporal_splits, run_day.year, problems)
    horizon = temporal_splits.get("label_horizon_days")
    if not isinstance(horizon, int) or horizon < 0:
        problems.append(f"temporal_splits.label_horizon_days must be an int >= 0, got {horizon!r}")
    problems += _model_config_problems(model_config)
    problems += _training_config_problems(training_config)
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
    return {
        "run_date": run_day.isoformat(),
        "window_mode": temporal_splits["mode"],
        "windows": windows,
        "label_horizon_days": horizon,
        "algorithms": list(training_config["algorithms"]),
        "parameters_sha256": hashlib.sha256(
            json.dumps(fitting, sort_keys=True, default=str).encode()
        ).hexdigest(),
    }


def _resolve_windows(
    splits: dict[str, Any], run_year: int, problems: list[str]
) -> dict[str, dict[str, int]]:
    mode = splits.get("mode")
    if mode not in WINDOW_MODES:
        problems.append(f"temporal_splits.mode must be one of {WINDOW_MODES}, got {mode!r}")
        return {}
    spec = splits.get(mode) or {}
    windows: dict[str, dict[str, int]] = {}
    for name in WINDOWS:
        window = spec.get(name)
        keys = (
            ("start_year", "end_year")
            if mode == "absolute"
            else ("start_years_back", "end_years_back")
        )
        if not isinstance(window, dict) or not all(isinstance(window.get(k), int) for k in keys):
            problems.append(f"temporal_splits.{mode}.{name} needs integer {keys[0]} and {keys[1]}")
            continue
        if mode == "absolute":
            start, end = window["start_year"], window["end_year"]
        else:
            start, end = run_year - window["start_years_back"], run_year - window["end_years_back"]
        windows[name] = {"start_year": start, "end_year": end}
    if len(windows) < len(WINDOWS):
        return windows
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
    return windows


def _years(window: dict[str, int]) -> str:
    return f"{window['start_year']}-{window['end_year']}"


def _model_config_problems(config: dict[str, Any]) -> list[str]:
    rules = {
        "random_state": lambda v: isinstance(v, int),
        "cv_folds": lambda v: isinstance(v, int) and v >= 2,
        "n_iter_search": lambda v: isinstance(v, int) and v >= 1,
        "n_jobs": lambda v: isinstance(v, int) and v >= 1,
        "halving_factor": lambda v: isinstance(v, int) and v >= 2,
        "final_rung_fraction": lambda v: isinstance(v, int | float) and 0 < v <= 1,
    }
    return [
        f"model_config.{key} is invalid: {config.get(key)!r}"
        for key, ok in rules.items()
        if not ok(config.get(key))
    ]


def _training_config_problems(config: dict[str, Any]) -> list[str]:
    problems = []
    algorithms = config.get("algorithms")
    if not isinstance(algorithms, list) or not algorithms:
        problems.append("training_config.algorithms must be a non-empty list")
    else:
        unknown = [a for a in algorithms if a not in ESTIMATORS]
        if unknown:
            problems.append(f"unknown algorithm(s) {unknown}; supported: {list(ESTIMATORS)}")
        if len(set(algorithms)) != len(algorithms):
            problems.append(f"training_config.algorithms has duplicates: {algorithms}")
    for key in ("hyperparameter_tuning", "feature_selection"):
        if not isinstance(config.get(key), bool):
            problems.append(f"training_config.{key} must be true or false")
    threshold = config.get("prediction_threshold")
    if not isinstance(threshold, float) or not 0 < threshold < 1:
        problems.append(
            f"training_config.prediction_threshold must be in (0, 1), got {threshold!r}"
        )
    evaluation = config.get("evaluation") or {}
    evaluation_rules = {
        "calibration_folds": lambda v: isinstance(v, int) and v >= 2,
        "bootstrap_resamples": lambda v: isinstance(v, int) and v >= 20,
        "interval_level": lambda v: isinstance(v, float) and 0 < v < 1,
        "seed": lambda v: isinstance(v, int),
    }
    problems += [
        f"training_config.evaluation.{key} is invalid: {evaluation.get(key)!r}"
        for key, ok in evaluation_rules.items()
        if not ok(evaluation.get(key))
    ]
    champion = config.get("champion") or {}
    if champion.get("metric") not in METRICS:
        problems.append(
            f"training_config.champion.metric must be one of {list(METRICS)}, "
            f"got {champion.get('metric')!r}"
        )
    tolerance = champion.get("tolerance")
    if not isinstance(tolerance, int | float) or tolerance < 0:
        problems.append(f"training_config.champion.tolerance must be >= 0, got {tolerance!r}")
    requirements = config.get("data_requirements") or {}
    for key in ("min_partitions", "min_rows_per_window"):
        value = requirements.get(key)
        if not isinstance(value, int) or value < 1:
            problems.append(f"training_config.data_requirements.{key} must be an int >= 1")
    preprocessing = config.get("preprocessing") or {}
    rare = preprocessing.get("rare_category_min_frequency")
    if not isinstance(rare, float) or not 0 <= rare < 1:
        problems.append(
            "training_config.preprocessing.rare_category_min_frequency must be a share in [0, 1)"
        )
    c_value = preprocessing.get("feature_selection_c")
    if not isinstance(c_value, int | float) or c_value <= 0:
        problems.append("training_config.preprocessing.feature_selection_c must be > 0")
    return problems
