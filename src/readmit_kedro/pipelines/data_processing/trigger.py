"""The "enough new data?" gate of the design, as a small JSON the Airflow DAGs read.

Kept apart from the medallion layers: it reads their summaries and the gold stores, never writes
a table. The signal holds two decisions, each with the figures behind it:

* ``train_recommended`` (data processing's gate before triggering training): enough new rows,
  and training's prerequisites met;
* ``training`` (the training DAG's first task, ``check_training_prerequisites``): gold's year
  partitions, the settled rows and positives of every window, the problems that would stop
  ``check_training_data``, and the digest of the would-be training inputs (the same
  ``training_inputs_sha256`` the registry records), all computed by training's own functions
  for this run_date, so the gate skips a run without starting a container.

It reads only the few gold columns a window decision needs and the partitions' content digests
from gold's manifests, so its cost stays small as gold grows (it used to load both stores whole
into pandas: the largest memory peak of a data processing run and the part that grew with
history).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from readmit_kedro.pipelines.training.checks import assess_training_data
from readmit_kedro.pipelines.training.config import TrainingConfigError, validate_training_config
from readmit_kedro.pipelines.training.preprocessing import GoldDataError
from readmit_kedro.run_context import Problems, is_int


def decide_training_trigger(
    ingestion: dict[str, Any],
    quality: dict[str, Any],
    trigger: dict[str, Any],
    gold_features: pd.DataFrame,
    gold_labels: pd.DataFrame,
    features_fingerprints: dict[str, str | None],
    labels_fingerprints: dict[str, str | None],
    **training_params: Any,
) -> dict[str, Any]:
    """Recommend training when the run ingested at least ``training_trigger.min_new_rows`` and
    gold meets training's prerequisites (``training_params``: the training DAG's parameters)."""
    min_new_rows = check_training_trigger(trigger)
    gold = (gold_features, gold_labels, features_fingerprints, labels_fingerprints)
    training = training_readiness(gold, training_params)
    new_rows = int(ingestion["new_rows"])
    enough_rows = new_rows >= min_new_rows
    recommended = enough_rows and training["prerequisites_met"]
    reason = (
        f"{new_rows} new rows >= {min_new_rows}"
        if enough_rows
        else f"only {new_rows} new rows (< {min_new_rows})"
    )
    if not training["prerequisites_met"]:
        reason += "; training prerequisites not met: " + "; ".join(training["problems"])
    return {
        "run_date": ingestion["run_date"],
        "new_extracts": ingestion["new_extracts"],
        "new_rows": new_rows,
        "model_population": quality["model_population"],
        "train_recommended": recommended,
        "reason": reason,
        "training": training,
    }


def training_readiness(gold: tuple, training_params: dict[str, Any]) -> dict[str, Any]:
    """Training's plan and data check for this run_date, as plain figures (never raises on data).

    ``gold``: the window columns of both stores and their partition digests, as
    :func:`~readmit_kedro.pipelines.training.checks.assess_training_data` takes them.
    """
    try:
        plan = validate_training_config(**training_params)
    except TrainingConfigError as exc:  # e.g. a run_date before the windows: no training then
        return {"run_date": training_params["run_date"], "prerequisites_met": False,
                "problems": [str(exc)]}  # fmt: skip
    try:
        report = assess_training_data(*gold, plan, training_params["training_config"])
    except GoldDataError as exc:
        report = {"partitions": [], "rows": {}, "positives": {}, "inputs_sha256": None}
        report["problems"] = [str(exc)]
    return {
        "run_date": plan["run_date"],
        "windows": plan["windows"],
        "algorithms": plan["algorithms"],
        **report,
        "prerequisites_met": not report["problems"],
    }


def check_training_trigger(trigger: Any) -> int:
    """``training_trigger.min_new_rows``; ConfigError naming the key if it is not an int >= 0."""
    problems = Problems("training_trigger", trigger)
    min_new_rows = problems.check("min_new_rows", is_int(0), "must be an int >= 0")
    problems.raise_if_any()
    return min_new_rows
