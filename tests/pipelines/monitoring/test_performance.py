"""Label maturity, the as-of window, performance metrics and concept drift."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, roc_auc_score

from readmit_kedro.pipelines.monitoring.nodes import (
    build_alerts,
    compute_data_drift,
    compute_performance,
    decide_retraining,
)
from readmit_kedro.pipelines.monitoring.window import Window, window_predictions
from readmit_kedro.schema import TARGET

from .conftest import CLEAN, NOT_EXPLAINED, RUN_DATE, make_world

CUTOFF = pd.Timestamp(RUN_DATE) - pd.Timedelta(days=30)


def discharged(predictions: pd.DataFrame, features: pd.DataFrame) -> pd.Series:
    """Admission date + stay (gold features), worked out here independently of the rule."""
    stay = predictions[["encounter_id"]].merge(
        features[["encounter_id", "time_in_hospital"]], on="encounter_id", how="left"
    )["time_in_hospital"]
    return predictions["admission_date"] + pd.to_timedelta(stay.fillna(0).to_numpy(), unit="D")


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return make_world(20_000, seed=5)


def test_predictions_newer_than_30_days_are_excluded_from_metrics(
    world, reference_profile: dict, config: dict
) -> None:
    features, labels, predictions = world
    immature = discharged(predictions, features) > CUTOFF
    # Scores of immature encounters inverted: counting any of them would wreck the metrics.
    predictions = predictions.assign(
        probability=np.where(immature, 1 - predictions["probability"], predictions["probability"])
    )
    result = compute_performance(predictions, labels, features, reference_profile, RUN_DATE, config)
    assert result["label_maturity"] == {
        "predictions_in_window": 20_000,
        "mature_labelled": int((~immature).sum()),
        "immature": int(immature.sum()),
        "mature_unlabelled": 0,
    }
    assert 0 < immature.sum() < 20_000
    mature = predictions[~immature].merge(labels[["encounter_id", TARGET]], on="encounter_id")
    metrics = result["metrics"]
    assert metrics["available"] and metrics["rows"] == len(mature)
    assert metrics["roc_auc"] == pytest.approx(roc_auc_score(mature[TARGET], mature["probability"]))
    assert metrics["accuracy"] == pytest.approx(
        accuracy_score(mature[TARGET], mature["probability"] >= config["prediction_threshold"])
    )
    assert not result["concept_drift"]["detected"]


def test_without_enough_mature_labels_metrics_are_not_available_never_zero(
    reference_profile: dict, config: dict
) -> None:
    features, labels, predictions = make_world(3_000, seed=6)
    recent = predictions[predictions["admission_date"] > CUTOFF - pd.Timedelta(days=2)]
    result = compute_performance(recent, labels, features, reference_profile, RUN_DATE, config)
    metrics = result["metrics"]
    assert result["label_maturity"]["mature_labelled"] < 100
    assert metrics["available"] is False
    assert "mature labelled predictions (< min_samples_for_metrics 100)" in metrics["reason"]
    assert set(metrics) == {"available", "reason"}  # no metric reported as 0
    assert result["concept_drift"] == {"evaluated": False, "detected": False, "breaches": []}
    alerts = build_alerts(
        result, {"available": False, "reason": "n/a"}, _no_retrain(), config, CLEAN, NOT_EXPLAINED
    )
    assert "Metrics not available: only" in alerts["alerts"][-1]["message"]


def test_mature_predictions_without_a_label_are_counted_as_unlabelled(
    world, reference_profile: dict, config: dict
) -> None:
    features, labels, predictions = world
    mature_ids = predictions.loc[discharged(predictions, features) <= CUTOFF, "encounter_id"]
    labels = labels[~labels["encounter_id"].isin(mature_ids.iloc[:1_000])]
    counts = compute_performance(
        predictions, labels, features, reference_profile, RUN_DATE, config
    )["label_maturity"]
    assert counts["mature_unlabelled"] == 1_000
    assert counts["mature_labelled"] == len(mature_ids) - 1_000


def test_the_window_is_as_of_run_date_with_one_latest_score_per_encounter(
    world, reference_profile: dict, config: dict
) -> None:
    features, labels, predictions = world
    first = predictions.iloc[[0]]
    rescored = first.assign(  # re-scored on run_date by a new champion: this score counts
        probability=0.99, run_date=RUN_DATE, scored_at=f"{RUN_DATE}T23:00:00+00:00"
    )
    future_run = predictions.iloc[:500].assign(run_date="2009-01-05")  # scored after run_date
    old = predictions.iloc[:300].assign(
        encounter_id=predictions["encounter_id"].iloc[:300] + 10**6,
        admission_date=pd.Timestamp("2008-09-01"),  # admitted before the 90-day window
    )
    store = pd.concat([rescored, predictions, future_run, old], ignore_index=True)
    window = Window.ending(date.fromisoformat(RUN_DATE), lookback_days=90, label_maturity_days=30)
    scored = window_predictions(store, window)
    assert len(scored) == 20_000 and scored["encounter_id"].is_unique
    assert (
        scored.set_index("encounter_id").loc[first["encounter_id"].iloc[0], "probability"] == 0.99
    )
    result = compute_performance(store, labels, features, reference_profile, RUN_DATE, config)
    assert result["label_maturity"]["predictions_in_window"] == 20_000
    assert result["window"] == {
        "run_date": RUN_DATE,
        "admitted_after": "2008-10-02",
        "label_maturity_cutoff": "2008-12-01",
    }
    assert result["model_versions"] == [
        {"model_algorithm": "logistic_regression", "model_version": "v20081001T000000000000Z",
         "predictions": 20_000}
    ]  # fmt: skip


def test_a_degraded_model_triggers_concept_drift_and_retraining(
    world, reference_profile: dict, config: dict
) -> None:
    features, labels, predictions = world
    shuffled = predictions.assign(
        probability=np.random.default_rng(0).permutation(predictions["probability"].to_numpy())
    )
    performance = compute_performance(
        shuffled, labels, features, reference_profile, RUN_DATE, config
    )
    breaches = {b["metric"]: b for b in performance["concept_drift"]["breaches"]}
    assert performance["concept_drift"]["detected"]
    assert {"roc_auc", "pr_auc"} <= set(breaches)
    auc = breaches["roc_auc"]
    assert auc["current"] == pytest.approx(0.5, abs=0.03)
    assert auc["drop"] == pytest.approx(auc["champion"] - auc["current"])
    assert auc["severity"] == "critical"  # a drop of ~0.18 > critical_performance_drop 0.10
    drift = compute_data_drift(shuffled, features, reference_profile, RUN_DATE, config)
    signal = decide_retraining(performance, drift, reference_profile, RUN_DATE, config)
    assert signal["retrain_recommended"]
    assert any(r.startswith("concept drift: roc_auc") for r in signal["reasons"])
    alerts = build_alerts(performance, drift, signal, config, CLEAN, NOT_EXPLAINED)["alerts"]
    assert alerts[0]["severity"] == "critical"
    assert alerts[0]["title"] == "Model performance dropped"
    assert alerts[-1]["severity"] == "info"


def test_a_shift_at_the_threshold_with_ranking_intact_warns_without_retraining(
    world, reference_profile: dict, config: dict
) -> None:
    """Scores shrunk monotonically: AUCs unchanged, recall at the threshold collapses."""
    features, labels, predictions = world
    shrunk = predictions.assign(probability=predictions["probability"] * 0.3)
    performance = compute_performance(shrunk, labels, features, reference_profile, RUN_DATE, config)
    breaches = {b["metric"]: b for b in performance["concept_drift"]["breaches"]}
    assert "recall" in breaches and not {"roc_auc", "pr_auc"} & set(breaches)
    assert all(not b["retrain"] and b["severity"] == "warning" for b in breaches.values())
    assert breaches["recall"]["drop"] > config["critical_performance_drop"]  # still not paged
    assert not performance["concept_drift"]["detected"]
    drift = compute_data_drift(predictions, features, reference_profile, RUN_DATE, config)
    signal = decide_retraining(performance, drift, reference_profile, RUN_DATE, config)
    assert not signal["retrain_recommended"] and signal["reasons"] == []
    alerts = build_alerts(performance, drift, signal, config, CLEAN, NOT_EXPLAINED)["alerts"]
    assert [a["title"] for a in alerts] == [
        "Metric at the decision threshold shifted",
        "Weekly monitoring report",
    ]
    assert alerts[0]["severity"] == "warning"
    assert alerts[0]["message"].startswith("metric shift: ")


def test_a_healthy_model_raises_no_concept_drift(world, reference_profile, config) -> None:
    features, labels, predictions = world
    performance = compute_performance(
        predictions, labels, features, reference_profile, RUN_DATE, config
    )
    assert performance["concept_drift"] == {"evaluated": True, "detected": False, "breaches": []}
    calibration = performance["metrics"]["calibration"]
    assert 1 < len(calibration) <= 10  # deciles; tied scores merge some
    assert sum(row["rows"] for row in calibration) == performance["metrics"]["rows"]
    curve = performance["metrics"]["roc_curve"]
    assert len(curve["fpr"]) == len(curve["tpr"]) == 101  # a fixed grid: aggregates only


def _no_retrain() -> dict:
    return {"run_date": RUN_DATE, "retrain_recommended": False, "reasons": []}


def test_an_empty_prediction_store_reports_instead_of_failing(
    world, reference_profile: dict, config: dict
) -> None:
    features, labels, predictions = world
    empty = predictions.iloc[:0]
    performance = compute_performance(empty, labels, features, reference_profile, RUN_DATE, config)
    drift = compute_data_drift(empty, features, reference_profile, RUN_DATE, config)
    assert performance["label_maturity"]["predictions_in_window"] == 0
    assert not performance["metrics"]["available"] and not drift["available"]
    signal = decide_retraining(performance, drift, reference_profile, RUN_DATE, config)
    alerts = build_alerts(performance, drift, signal, config, CLEAN, NOT_EXPLAINED)["alerts"]
    assert [(a["severity"], a["title"]) for a in alerts] == [
        ("warning", "Drift not evaluated"),
        ("info", "Weekly monitoring report"),
    ]
    assert not signal["retrain_recommended"]


def test_monthly_auc_intervals_are_clustered_by_patient_and_contain_the_estimate(
    reference_profile: dict, config: dict
) -> None:
    """Each patient's encounters repeated 3 times (new encounter ids, same patient_nbr) carry no
    more information: clustered by patient, the intervals are those of the original month."""
    features, labels, predictions = make_world(1_200, seed=8)
    performance = compute_performance(
        predictions, labels, features, reference_profile, RUN_DATE, config
    )
    metrics, bootstrap = performance["metrics"], config["bootstrap"]
    intervals = metrics["intervals"]
    assert intervals["level"] == bootstrap["level"] == 0.95
    assert 0.95 * bootstrap["resamples"] <= intervals["resamples_used"] <= bootstrap["resamples"]
    assert "patient-clustered" in intervals["method"]
    for name in ("roc_auc", "pr_auc"):
        entry = intervals[name]
        assert entry["estimate"] == pytest.approx(metrics[name])
        assert entry["low"] < entry["estimate"] < entry["high"], name
        assert entry["se"] > 0

    def repeated(frame: pd.DataFrame) -> pd.DataFrame:
        copies = [frame.assign(encounter_id=frame["encounter_id"] + i * 10**6) for i in range(3)]
        return pd.concat(copies, ignore_index=True)

    again = compute_performance(
        repeated(predictions),
        repeated(labels),
        repeated(features),
        reference_profile,
        RUN_DATE,
        config,
    )["metrics"]
    assert again["rows"] == 3 * metrics["rows"]
    for name in ("roc_auc", "pr_auc"):
        for key in ("estimate", "low", "high", "se"):
            assert again["intervals"][name][key] == pytest.approx(intervals[name][key]), name
    no_drift = {"available": False, "reason": "n/a"}
    message = build_alerts(performance, no_drift, _no_retrain(), config, CLEAN, NOT_EXPLAINED)[
        "alerts"
    ][-1]["message"]
    low, high = intervals["roc_auc"]["low"], intervals["roc_auc"]["high"]
    assert f"roc_auc {metrics['roc_auc']:.3f} [{low:.3f}, {high:.3f}]" in message


def test_maturity_counts_from_discharge_the_rule_training_uses(
    world, reference_profile: dict, config: dict
) -> None:
    """Admitted 35 days before run_date with a 10-day stay: discharged 25 days ago, so its label
    can still flip. Monitoring and training's split_windows agree on every encounter."""
    from readmit_kedro.pipelines.training.preprocessing import split_windows

    features, labels, predictions = world
    admitted = pd.Timestamp(RUN_DATE) - pd.Timedelta(days=35)
    one = predictions.head(200).assign(admission_date=admitted)
    stays = features.assign(time_in_hospital=10.0)
    counts = compute_performance(one, labels, stays, reference_profile, RUN_DATE, config)[
        "label_maturity"
    ]
    assert counts["immature"] == 200 and counts["mature_labelled"] == 0
    short = stays.assign(time_in_hospital=5.0)  # discharged exactly 30 days before: mature
    counts = compute_performance(one, labels, short, reference_profile, RUN_DATE, config)[
        "label_maturity"
    ]
    assert counts["immature"] == 0 and counts["mature_labelled"] == 200

    gold = one[["encounter_id", "admission_date"]].assign(
        time_in_hospital=[10.0, 5.0] * 100, readmitted_30d=0
    )
    plan = {"run_date": RUN_DATE, "label_horizon_days": config["label_maturity_days"],
            "windows": {"all": {"start_year": 1990, "end_year": 2100}}}  # fmt: skip
    kept = split_windows(gold, plan)["all"]
    assert sorted(kept["time_in_hospital"].unique()) == [5.0] and len(kept) == 100


def _month(roc_high: float) -> dict:
    """Metrics of a window whose ROC AUC is 0.62 (0.06 below a 0.68 champion)."""
    intervals = {"level": 0.95, "roc_auc": {"low": 0.57, "high": roc_high},
                 "pr_auc": {"low": 0.15, "high": 0.25}}  # fmt: skip
    return {"available": True, "roc_auc": 0.62, "pr_auc": 0.20, "intervals": intervals}


@pytest.mark.parametrize(
    ("roc_high", "guard", "retrain"),
    [(0.665, True, True), (0.69, True, False), (0.69, False, True)],
    ids=["significant", "noise-guarded", "guard-off"],
)
def test_a_drop_retrains_only_when_significant(config, roc_high, guard, retrain) -> None:
    """0.06 (absolute) > 0.05 below the champion: retrain only if the champion's 0.68 is above
    the window's whole interval; inside it, the breach is a warning that says why."""
    from readmit_kedro.model.reference_profile import CHAMPION_METRICS
    from readmit_kedro.pipelines.monitoring.config import MonitoringConfig
    from readmit_kedro.pipelines.monitoring.findings import list_findings
    from readmit_kedro.pipelines.monitoring.performance import concept_drift

    settings = MonitoringConfig.parse({**config, "significance_guard": guard})
    metrics = _month(roc_high)
    champion = {name: metrics.get(name, 0.5) for name in CHAMPION_METRICS} | {"roc_auc": 0.68}
    for name in CHAMPION_METRICS:
        metrics.setdefault(name, champion[name])
    drift = concept_drift(metrics, champion, settings)
    (breach,) = drift["breaches"]
    assert breach["metric"] == "roc_auc" and breach["drop"] == pytest.approx(0.06)
    assert breach["retrain"] is retrain and drift["detected"] is retrain
    assert breach["severity"] == "warning"  # 0.06 < critical 0.10
    finding = list_findings({"concept_drift": drift}, {"available": False, "reason": "-"}, 0.2)[0]
    assert ("not significant" in finding["reason"]) is (not retrain)


def test_the_guard_needs_metrics_with_an_interval(config) -> None:
    from readmit_kedro.pipelines.monitoring.config import MonitoringConfig
    from readmit_kedro.run_context import ConfigError

    with pytest.raises(ConfigError, match=r"\['recall'\] have no bootstrap interval"):
        MonitoringConfig.parse({**config, "concept_drift_metrics": ["roc_auc", "recall"]})
