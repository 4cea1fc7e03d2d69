"""Prerequisite data checks: stop a run that gold cannot support, or that would only repeat the last.

They run once, after the plan and before preprocessing, so a run without enough data fails fast
with every shortfall named instead of training three models on it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

import pandas as pd

from readmit_kedro.pipelines.training.preprocessing import join_gold, window_masks
from readmit_kedro.schema import TARGET

logger = logging.getLogger(__name__)


class InsufficientDataError(RuntimeError):
    """Gold holds too little data for an honest training run; the message lists every shortfall."""


class UnchangedTrainingInputsError(InsufficientDataError):
    """The last run trained on exactly these rows and parameters: a retrain would reproduce it."""


# The only gold columns a window decision reads: the check and data processing's trigger load
# just these (gold_features@window, gold_labels@window), never the whole stores.
WINDOW_COLUMNS: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("encounter_id", "admission_date", "time_in_hospital"),
    ("encounter_id", TARGET),
)


def check_training_data(
    gold_features: pd.DataFrame,
    gold_labels: pd.DataFrame,
    features_fingerprints: dict[str, str | None],
    labels_fingerprints: dict[str, str | None],
    training_plan: dict[str, Any],
    training_config: dict[str, Any],
    latest_registered_models: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Stop the run unless gold has enough year partitions and every window enough labelled rows.

    Also stop it when the latest registered version of every algorithm was trained on the same
    train/test rows with the same parameters: training is deterministic, so it would register
    copies and re-decide the champion identically (a retrain signal that repeats within one
    relative-window year, for instance). New rows, changed rows or parameters run it again.
    """
    report = assess_training_data(
        gold_features,
        gold_labels,
        features_fingerprints,
        labels_fingerprints,
        training_plan,
        training_config,
    )
    problems = report.pop("problems")
    if problems:
        raise InsufficientDataError("not enough training data:\n  - " + "\n  - ".join(problems))
    _refuse_a_repeat(report, training_plan, latest_registered_models)
    logger.info("training data check passed: %s", report)
    return report


def assess_training_data(
    gold_features: pd.DataFrame,
    gold_labels: pd.DataFrame,
    features_fingerprints: dict[str, str | None],
    labels_fingerprints: dict[str, str | None],
    training_plan: dict[str, Any],
    training_config: dict[str, Any],
) -> dict[str, Any]:
    """What ``check_training_data`` decides on, without raising: ``problems`` lists every shortfall.

    Also the training part of data processing's signal (``data_processing/trigger.py``), so the
    Airflow gate of the training DAG decides on exactly these figures without starting a task.
    The stores need only :data:`WINDOW_COLUMNS`; the rows are counted per admission date, stay
    and label, so the decision holds a few thousand counts however large gold grows.
    """
    requirements = training_config["data_requirements"]
    counts = _window_counts(join_gold(gold_features, gold_labels, WINDOW_COLUMNS))
    run_year = pd.Timestamp(training_plan["run_date"]).year
    years = counts["admission_date"].dt.year
    partitions = sorted(int(y) for y in years.unique() if y <= run_year)
    masks = window_masks(counts, training_plan)
    rows = {name: int(counts["rows"][mask].sum()) for name, mask in masks.items()}
    positives = {
        name: int((counts["rows"] * counts[TARGET])[mask].sum()) for name, mask in masks.items()
    }
    problems = []
    if len(partitions) < requirements["min_partitions"]:
        problems.append(
            f"gold has {len(partitions)} admission_year partitions up to {run_year} "
            f"({partitions}); at least {requirements['min_partitions']} are required"
        )
    for name, mask in masks.items():
        window = training_plan["windows"][name]
        years_text = f"{window['start_year']}-{window['end_year']}"
        labels = counts.loc[mask, TARGET]
        if rows[name] < requirements["min_rows_per_window"]:
            problems.append(
                f"window {name} ({years_text}) has {rows[name]} rows with settled labels; "
                f"at least {requirements['min_rows_per_window']} are required"
            )
        elif labels.nunique() < 2:
            problems.append(
                f"window {name} ({years_text}) has only {TARGET}={labels.iloc[0]}: "
                "ROC AUC and a classifier need both classes"
            )
    digest = training_inputs_sha256(training_plan, rows, features_fingerprints, labels_fingerprints)
    return {
        "partitions": partitions,
        "rows": rows,
        "positives": positives,
        "inputs_sha256": digest,
        "problems": problems,
    }


def _window_counts(gold: pd.DataFrame) -> pd.DataFrame:
    """Encounters per (admission_date, time_in_hospital, label): all a window decision needs."""
    keys = ["admission_date", "time_in_hospital", TARGET]
    return gold.groupby(keys, dropna=False).size().rename("rows").reset_index()


def training_inputs_sha256(
    training_plan: dict[str, Any],
    rows: dict[str, int],
    features_fingerprints: dict[str, str | None],
    labels_fingerprints: dict[str, str | None],
) -> str | None:
    """Digest of what the models are fitted and selected on, named without reading the rows.

    It covers the parameters and, per train and test window, its years, its settled row count and
    the content digests of both stores' partitions (admission months, ``YYYY-MM``) in those years.
    A label only ever settles, never unsettles, so over unchanged partitions the count names the
    rows exactly. None when a partition has no digest: such inputs never count as a repeat.
    """
    digest = hashlib.sha256(training_plan["parameters_sha256"].encode())
    months = sorted({*features_fingerprints, *labels_fingerprints})
    for name in ("train", "test"):
        window = training_plan["windows"][name]
        held = [m for m in months if m[:4].isdigit()]
        held = [m for m in held if window["start_year"] <= int(m[:4]) <= window["end_year"]]
        parts = [[m, features_fingerprints.get(m), labels_fingerprints.get(m)] for m in held]
        if any(None in part for part in parts):
            return None
        horizon = training_plan["label_horizon_days"]
        digest.update(json.dumps([name, window, horizon, rows[name], parts]).encode())
    return digest.hexdigest()


def _refuse_a_repeat(
    report: dict[str, Any], plan: dict[str, Any], latest: dict[str, dict[str, Any]]
) -> None:
    previous = [latest.get(name) for name in plan["algorithms"]]
    if report["inputs_sha256"] is None or not all(
        record and record.get("training_inputs_sha256") == report["inputs_sha256"]
        for record in previous
    ):
        return
    windows = plan["windows"]
    raise UnchangedTrainingInputsError(
        "nothing new to train on: the latest versions ("
        + ", ".join(f"{r['algorithm']} {r['version']}" for r in previous)
        + f") were trained on the same rows (train {windows['train']['start_year']}-"
        f"{windows['train']['end_year']}: {report['rows']['train']}, test "
        f"{windows['test']['start_year']}-{windows['test']['end_year']}: {report['rows']['test']})"
        " and parameters; a retrain would reproduce them. It runs again once the windows move, "
        "the rows change or the training parameters do."
    )
