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

from readmit_kedro.io.published import Partitions
from readmit_kedro.pipelines.training.champion import refuse_an_inflated_comparison
from readmit_kedro.pipelines.training.preprocessing import GoldDataError, join_gold, window_masks
from readmit_kedro.schema import TARGET

logger = logging.getLogger(__name__)


class InsufficientDataError(RuntimeError):
    """Gold holds too little data for an honest training run; the message lists every shortfall."""


class UnchangedTrainingInputsError(InsufficientDataError):
    """The last run trained on exactly these rows and parameters: a retrain would reproduce it."""


# The only gold columns a window decision reads: the check and data processing's trigger load
# just these (gold_features@window, gold_labels@window, one admission month at a time).
WINDOW_COLUMNS: tuple[tuple[str, ...], tuple[str, ...]] = (
    ("encounter_id", "admission_date", "time_in_hospital"),
    ("encounter_id", TARGET),
)

# The window counts of one admission month, named by the content digests of the partitions they
# were counted from (:func:`monthly_window_counts`).
MONTH_KEYS = ["month", "features_sha256", "labels_sha256"]
COUNT_COLUMNS = [*MONTH_KEYS, "admission_date", "time_in_hospital", TARGET, "rows"]


def check_training_data(
    gold_features: Partitions,
    gold_labels: Partitions,
    features_fingerprints: dict[str, str | None],
    labels_fingerprints: dict[str, str | None],
    training_plan: dict[str, Any],
    training_config: dict[str, Any],
    latest_registered_models: dict[str, dict[str, Any]],
    current_champion: dict[str, Any] | None,
) -> dict[str, Any]:
    """Stop the run unless gold has enough year partitions and every window enough labelled rows.

    Also stop it when the latest registered version of every algorithm was trained on the same
    train/test rows with the same parameters: training is deterministic, so it would register
    copies and re-decide the champion identically (a retrain signal that repeats within one
    relative-window year, for instance). New rows, changed rows or parameters run it again.
    And stop it before anything is trained when the champion (its entry and training windows)
    could not be compared honestly with this run's models (:func:`refuse_an_inflated_comparison`).
    """
    counts = monthly_window_counts(
        gold_features, gold_labels, features_fingerprints, labels_fingerprints, pd.DataFrame()
    )
    report = assess_training_data(
        counts, features_fingerprints, labels_fingerprints, training_plan, training_config
    )
    problems = report.pop("problems")
    if problems:
        raise InsufficientDataError("not enough training data:\n  - " + "\n  - ".join(problems))
    _refuse_a_repeat(report, training_plan, latest_registered_models)
    if current_champion is not None:
        refuse_an_inflated_comparison(current_champion, training_plan)
    logger.info("training data check passed: %s", report)
    return report


def window_counts(gold_features: pd.DataFrame, gold_labels: pd.DataFrame) -> pd.DataFrame:
    """Encounters per (admission_date, time_in_hospital, label): all a window decision needs.

    The stores need only :data:`WINDOW_COLUMNS`; the counts are a few thousand rows however large
    gold grows, and the counts of several sets of admission dates concatenate into theirs.
    """
    gold = join_gold(gold_features, gold_labels, WINDOW_COLUMNS)
    keys = ["admission_date", "time_in_hospital", TARGET]
    return gold.groupby(keys, dropna=False).size().rename("rows").reset_index()


def monthly_window_counts(
    gold_features: Partitions,
    gold_labels: Partitions,
    features_fingerprints: dict[str, str | None],
    labels_fingerprints: dict[str, str | None],
    counted: pd.DataFrame,
) -> pd.DataFrame:
    """Gold's :func:`window_counts` by admission month (``gold_*``: month -> loader).

    A month whose two partition digests are those ``counted`` holds for it is taken from there
    unread; every other month is read (window columns only) and counted. A digest names the
    partition's content, so the result equals counting gold whole, whatever ``counted`` holds: a
    correction to an old month changes its digest and is read again, and a partition saved
    without a digest is read every run.
    """
    unpaired = sorted(set(gold_features) ^ set(gold_labels))
    if unpaired:
        raise GoldDataError(f"gold stores disagree: admission months {unpaired} are in only one")
    if not gold_features:
        raise GoldDataError("gold_features is empty: run the data_processing pipeline first")
    months = pd.DataFrame(
        [
            (m, features_fingerprints.get(m), labels_fingerprints.get(m))
            for m in sorted(gold_features)
        ],
        columns=MONTH_KEYS,
    )
    if not set(COUNT_COLUMNS) <= set(counted.columns):  # nothing counted yet
        counted = pd.DataFrame(columns=COUNT_COLUMNS)
    kept = counted[COUNT_COLUMNS].merge(months.dropna(), on=MONTH_KEYS)
    held = set(kept["month"])
    fresh = [
        window_counts(gold_features[month](), gold_labels[month]()).assign(
            month=month, features_sha256=features, labels_sha256=labels
        )
        for month, features, labels in months.itertuples(index=False)
        if month not in held
    ]
    counts = pd.concat([frame for frame in (kept, *fresh) if len(frame)], ignore_index=True)
    order = ["month", "admission_date", "time_in_hospital", TARGET]
    return counts[COUNT_COLUMNS].sort_values(order, ignore_index=True)


def assess_training_data(
    counts: pd.DataFrame,
    features_fingerprints: dict[str, str | None],
    labels_fingerprints: dict[str, str | None],
    training_plan: dict[str, Any],
    training_config: dict[str, Any],
) -> dict[str, Any]:
    """What ``check_training_data`` decides on, without raising: ``problems`` lists every shortfall.

    ``counts``: gold's :func:`window_counts`. Also the training part of data processing's signal
    (``data_processing/trigger.py``), so the Airflow gate of the training DAG decides on exactly
    these figures without starting a task.
    """
    requirements = training_config["data_requirements"]
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
