"""Champion selection and promotion: re-score the incumbent, choose, and baseline monitoring.

Challengers and the incumbent are compared on the same test rows and the same kind of score, and
only test figures decide; OOT is carried in the report for reading, never for choosing.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from readmit_kedro.io.model_store import TrainingSnapshot
from readmit_kedro.io.published import Partitions
from readmit_kedro.io.registry import LoadedModel
from readmit_kedro.model.calibration import CalibratedModel, cross_fitted_probabilities
from readmit_kedro.model.importance import input_means
from readmit_kedro.model.metrics import classification_metrics
from readmit_kedro.model.reference_profile import build_reference_profile
from readmit_kedro.pipelines.training.config import METRICS
from readmit_kedro.pipelines.training.evaluation import calibration_window_metrics
from readmit_kedro.pipelines.training.preprocessing import (
    GoldDataError,
    window_batches,
    window_of,
)
from readmit_kedro.schema import FEATURE_COLUMNS, TARGET

logger = logging.getLogger(__name__)

EVALUATION_WINDOWS: tuple[str, ...] = ("test", "oot")


class ChampionNotComparableError(RuntimeError):
    """The champion was trained on rows of this run's test window: its re-score would be inflated."""


def score_current_champion(
    current_champion: LoadedModel | None,
    gold_features: Partitions,
    gold_labels: Partitions,
    snapshot: TrainingSnapshot,
    training_plan: dict[str, Any],
    training_data_check: dict[str, Any],
    training_config: dict[str, Any],
) -> dict[str, Any]:
    """Re-score the current champion on exactly the test rows the challengers are scored on.

    Its uncalibrated scores are cross-fit calibrated on those rows as a challenger's are, so the
    comparison is like for like whatever the champion metric (its calibrator saw another window).
    Past the train task's memory, gold is read a partition at a time (:func:`window_batches`).
    A champion trained on any year of this test window is refused, not scored
    (:func:`refuse_an_inflated_comparison`).
    """
    if current_champion is None:
        return {"champion": None}
    refuse_an_inflated_comparison(current_champion.record, training_plan)
    batches = window_batches(
        gold_features, gold_labels, training_plan, training_data_check, training_config
    )
    test = window_of(batches, "test")
    test = test[test["encounter_id"].isin(snapshot.test["encounter_id"])]
    if len(test) != len(snapshot.test):
        raise GoldDataError(
            f"gold changed since preprocessing: {len(test)} of the {len(snapshot.test)} test "
            "encounters are still there; re-run the training pipeline"
        )
    record = current_champion.record
    return {
        "champion": {k: record[k] for k in ("algorithm", "version", "sha256", "history_id")},
        "test": calibration_window_metrics(
            *_raw_and_shipped_scores(current_champion.model, test),
            test[TARGET].to_numpy(),
            test["patient_nbr"].to_numpy(),
            training_config,
        ),
    }


def refuse_an_inflated_comparison(champion: dict[str, Any], plan: dict[str, Any]) -> None:
    """Raise unless the champion's train window ends before this run's test window starts.

    Forward in time it always does (both windows move with run_date). A run at an earlier date
    than the champion's (an Airflow backfill, a replay over an old registry) or with windows moved
    back would score the champion on rows it learned from, and keep it on an inflated figure.
    """
    test = plan["windows"]["test"]
    trained = (champion.get("windows") or {}).get("train")
    if trained is not None and trained["end_year"] < test["start_year"]:
        return
    named = f"the champion {champion['algorithm']} {champion['version']}"
    if trained is None:
        why = f"{named} has no train window on record"
    else:
        why = (
            f"{named} was trained on admission years {trained['start_year']}-"
            f"{trained['end_year']} (run_date {champion.get('run_date')}), and this run's test "
            f"window is {test['start_year']}-{test['end_year']}"
        )
    raise ChampionNotComparableError(
        f"{why}: scored on rows it was trained on, its figure would be inflated, so it cannot be "
        f"compared with this run's challengers (run_date {plan['run_date']}). Train at a run_date "
        "whose test window starts after its train window, or choose the champion by hand "
        "(`readmit registry promote` or `rollback`)."
    )


def _raw_and_shipped_scores(
    bundle: CalibratedModel, gold: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """A registered bundle's scores before its calibrator, and the probabilities it emits."""
    raw = bundle.model.predict_proba(gold)[:, 1]
    return raw, bundle.calibrator.predict(raw)


def select_champion(
    training_plan: dict[str, Any],
    current_champion_scores: dict[str, Any],
    training_config: dict[str, Any],
    **candidates: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Best eligible candidate on test, unless worse than the champion by more than the tolerance.

    Returns the champion decision (saving it promotes, or keeps the champion as a no-op; either is
    refused if the champion is no longer the one compared with here) and a report that says why.
    """
    metric = training_config["champion"]["metric"]
    tolerance = training_config["champion"]["tolerance"]
    sign = 1 if METRICS[metric] else -1
    _check_same_run(candidates, training_plan)
    eligible = {a: r for a, r in candidates.items() if a in training_plan["algorithms"]}
    best = max(eligible, key=lambda a: sign * eligible[a]["metrics"]["test"][metric])
    challenger = eligible[best]
    score = challenger["metrics"]["test"][metric]
    test = training_plan["windows"]["test"]
    window = f"test window {test['start_year']}-{test['end_year']}"
    described = f"{best} {challenger['version']} ({metric} {score:.4f} on the {window})"
    current = current_champion_scores["champion"]
    if current is None:
        decision, reason = challenger, f"first champion: {described}"
    else:
        incumbent = current_champion_scores["test"][metric]
        shortfall = sign * (incumbent - score)
        named = f"{current['algorithm']} {current['version']} (re-scored {metric} {incumbent:.4f})"
        if shortfall > tolerance:
            decision = current
            reason = (
                f"kept {named}: best challenger {described} is worse by {shortfall:.4f}, "
                f"more than the tolerance {tolerance}"
            )
        else:
            decision = challenger
            reason = f"promoted {described} over {named}, tolerance {tolerance}"
    logger.info("champion selection: %s", reason)
    report = {
        "decision": {"algorithm": decision["algorithm"], "version": decision["version"]},
        "promoted": decision is challenger,
        "reason": reason,
        "metric": metric,
        "tolerance": tolerance,
        "run_date": training_plan["run_date"],
        "windows": training_plan["windows"],
        "candidates": {
            a: {
                "version": r["version"],
                "eligible": a in eligible,
                **{w: r["metrics"][w] for w in EVALUATION_WINDOWS},
            }
            for a, r in candidates.items()
        },
        "current_champion": current_champion_scores,
    }
    replaces = current["history_id"] if current else None  # promotion is refused if it changed
    return {**report["decision"], "reason": reason, "replaces": replaces}, report


def _check_same_run(candidates: dict[str, Any], plan: dict[str, Any]) -> None:
    """Refuse to compare models from different runs (e.g. a stale version after a failed task)."""
    snapshots = {r.get("training_data_version") for r in candidates.values()}
    run_dates = {r.get("run_date") for r in candidates.values()}
    if len(snapshots) != 1 or run_dates != {plan["run_date"]}:
        found = {a: (r["version"], r.get("training_data_version")) for a, r in candidates.items()}
        raise RuntimeError(
            f"latest registered versions come from different training runs {found} (run_date "
            f"{plan['run_date']}); re-run every algorithm before selecting a champion"
        )


def build_champion_reference(
    champion: LoadedModel,
    gold_features: Partitions,
    gold_labels: Partitions,
    training_plan: dict[str, Any],
    training_data_check: dict[str, Any],
    training_config: dict[str, Any],
    profile_config: dict[str, Any],
) -> dict[str, Any]:
    """Monitoring's baseline: the champion's profile and metrics on this run's test window.

    The test window is the most recent labelled data the champion was validated on, so drift is
    measured from there (see ``readmit_kedro.model.reference_profile``). The score distribution is the
    bundle's, as production emits it; the metrics use cross-fitted probabilities (the bundle's
    calibrator was fitted on these very rows) at the shared decision threshold. It also holds the
    mean of each model input over this run's train window (``input_means``), the reference point of
    monitoring's linear SHAP (for a champion kept from an earlier run, its train window shifted).
    Past the train task's memory, gold is read a partition at a time (:func:`window_batches`): the
    test window is held whole, train one partition's rows at a time.
    """
    batches = window_batches(
        gold_features, gold_labels, training_plan, training_data_check, training_config
    )
    test = window_of(batches, "test")
    y = test[TARGET].to_numpy()
    raw, shipped = _raw_and_shipped_scores(champion.model, test)
    held_out = cross_fitted_probabilities(
        raw,
        y,
        test["patient_nbr"].to_numpy(),
        folds=training_config["evaluation"]["calibration_folds"],
    )
    test_metrics = classification_metrics(y, held_out, training_config["prediction_threshold"])
    profile = build_reference_profile(
        test[list(FEATURE_COLUMNS)],
        shipped,
        test_metrics,
        profile_config,
    )
    champion_info = {k: champion.record[k] for k in ("algorithm", "version")}
    # Monitoring's retrain cooldown counts from this run, whether or not the champion changed.
    return {
        **profile,
        # linear SHAP's reference point (model.importance), for monitoring's feature importance
        "input_means": input_means(
            champion.model, (load()["train"][list(FEATURE_COLUMNS)] for load in batches)
        ),
        "champion": {**champion_info, "training_run_date": training_plan["run_date"]},
    }
