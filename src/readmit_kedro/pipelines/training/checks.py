"""Prerequisite data checks: stop a run that gold cannot support, or that would only repeat the last.

They run once, after the plan and before preprocessing, so a run without enough data fails fast
with every shortfall named instead of training three models on it.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import pandas as pd

from readmit_kedro.pipelines.training.preprocessing import join_gold, split_windows
from readmit_kedro.schema import TARGET

logger = logging.getLogger(__name__)


class InsufficientDataError(RuntimeError):
    """Gold holds too little data for an honest training run; the message lists every shortfall."""


class UnchangedTrainingInputsError(InsufficientDataError):
    """The last run trained on exactly these rows and parameters: a retrain would reproduce it."""


def check_training_data(
    gold_features: pd.DataFrame,
    gold_labels: pd.DataFrame,
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
    report = assess_training_data(gold_features, gold_labels, training_plan, training_config)
    problems = report.pop("problems")
    if problems:
        raise InsufficientDataError("not enough training data:\n  - " + "\n  - ".join(problems))
    _refuse_a_repeat(report, training_plan, latest_registered_models)
    logger.info("training data check passed: %s", report)
    return report


def assess_training_data(
    gold_features: pd.DataFrame,
    gold_labels: pd.DataFrame,
    training_plan: dict[str, Any],
    training_config: dict[str, Any],
) -> dict[str, Any]:
    """What ``check_training_data`` decides on, without raising: ``problems`` lists every shortfall.

    Also the training part of data processing's signal (``data_processing/trigger.py``), so the
    Airflow gate of the training DAG decides on exactly these figures without starting a task.
    """
    requirements = training_config["data_requirements"]
    gold = join_gold(gold_features, gold_labels)
    run_year = pd.Timestamp(training_plan["run_date"]).year
    partitions = sorted(int(y) for y in gold["admission_year"].unique() if y <= run_year)
    windows = split_windows(gold, training_plan)
    problems = []
    if len(partitions) < requirements["min_partitions"]:
        problems.append(
            f"gold has {len(partitions)} admission_year partitions up to {run_year} "
            f"({partitions}); at least {requirements['min_partitions']} are required"
        )
    for name, frame in windows.items():
        window = training_plan["windows"][name]
        years = f"{window['start_year']}-{window['end_year']}"
        if len(frame) < requirements["min_rows_per_window"]:
            problems.append(
                f"window {name} ({years}) has {len(frame)} rows with settled labels; "
                f"at least {requirements['min_rows_per_window']} are required"
            )
        elif frame[TARGET].nunique() < 2:
            problems.append(
                f"window {name} ({years}) has only {TARGET}={frame[TARGET].iloc[0]}: "
                "ROC AUC and a classifier need both classes"
            )
    return {
        "partitions": partitions,
        "rows": {name: len(frame) for name, frame in windows.items()},
        "positives": {name: int(frame[TARGET].sum()) for name, frame in windows.items()},
        "inputs_sha256": training_inputs_sha256(windows, training_plan),
        "problems": problems,
    }


def training_inputs_sha256(windows: dict[str, pd.DataFrame], training_plan: dict[str, Any]) -> str:
    """Digest of what the models are fitted and selected on: train/test rows and the parameters."""
    digest = hashlib.sha256(training_plan["parameters_sha256"].encode())
    for name in ("train", "test"):
        rows = windows[name].sort_values("encounter_id").reset_index(drop=True)
        rows = rows[sorted(rows.columns)]
        digest.update(pd.util.hash_pandas_object(rows, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _refuse_a_repeat(
    report: dict[str, Any], plan: dict[str, Any], latest: dict[str, dict[str, Any]]
) -> None:
    previous = [latest.get(name) for name in plan["algorithms"]]
    if not all(
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
