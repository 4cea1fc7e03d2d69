"""The "enough new data?" gate of the design, as a small JSON the Airflow DAG reads.

Kept apart from the medallion layers: it reads only their summaries, never a table.
"""

from __future__ import annotations

from typing import Any

from readmit_kedro.run_context import Problems, is_int


def decide_training_trigger(
    ingestion: dict[str, Any], quality: dict[str, Any], trigger: dict[str, Any]
) -> dict[str, Any]:
    """Recommend training when the run ingested at least ``training_trigger.min_new_rows``."""
    min_new_rows = check_training_trigger(trigger)
    new_rows = int(ingestion["new_rows"])
    recommended = new_rows >= min_new_rows
    reason = (
        f"{new_rows} new rows >= {min_new_rows}"
        if recommended
        else f"only {new_rows} new rows (< {min_new_rows})"
    )
    return {
        "run_date": ingestion["run_date"],
        "new_extracts": ingestion["new_extracts"],
        "new_rows": new_rows,
        "model_population": quality["model_population"],
        "train_recommended": recommended,
        "reason": reason,
    }


def check_training_trigger(trigger: Any) -> int:
    """``training_trigger.min_new_rows``; ConfigError naming the key if it is not an int >= 0."""
    problems = Problems("training_trigger", trigger)
    min_new_rows = problems.check("min_new_rows", is_int(0), "must be an int >= 0")
    problems.raise_if_any()
    return min_new_rows
