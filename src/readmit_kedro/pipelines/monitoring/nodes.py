"""Monitoring nodes: each one a task of the ``diab_model_monitoring`` DAG.

Every node is a pure function of its inputs and ``run_date``: ``route_alerts`` only renders the
messages; its output dataset (``monitoring_alert_delivery_log``, which holds the credentials)
sends them. Nodes hand each other only small JSON aggregates (each Airflow task is its own
``kedro run``), so no patient row is ever persisted by monitoring. Logs at INFO carry counts and rates only.

Each node parses what it receives of ``run_date``, ``monitoring_config`` and ``alerting`` first
(:class:`RunDate`, :mod:`.config`), so a bad parameter stops it before it touches its inputs;
the helpers below take the parsed values.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from readmit_kedro.io.registry import LoadedModel
from readmit_kedro.model import importance as shap_values
from readmit_kedro.model.metrics import describe_metric
from readmit_kedro.pipelines.monitoring import alerts as alerting
from readmit_kedro.pipelines.monitoring import report as rendering
from readmit_kedro.pipelines.monitoring.config import AlertingConfig, MonitoringConfig
from readmit_kedro.pipelines.monitoring.drift import (
    categorical_drift,
    missing_rate_check,
    numeric_drift,
)
from readmit_kedro.pipelines.monitoring.findings import (
    data_quality_findings,
    importance_findings,
    list_findings,
)
from readmit_kedro.pipelines.monitoring.importance import (
    explained,
    period_importance,
    ranking_change,
)
from readmit_kedro.pipelines.monitoring.performance import (
    concept_drift,
    performance_metrics,
    split_by_maturity,
)
from readmit_kedro.pipelines.monitoring.window import Window, window_predictions
from readmit_kedro.run_context import RunDate

logger = logging.getLogger(__name__)


def compute_performance(
    predictions: pd.DataFrame,
    labels: pd.DataFrame,
    features: pd.DataFrame,
    reference_profile: dict[str, Any],
    run_date: str,
    config: dict[str, Any],
) -> dict[str, Any]:
    """Metrics on the window's mature labels and concept drift against the champion."""
    settings, window, scored = _scored_window(predictions, run_date, config)
    labelled, counts = split_by_maturity(scored, labels, features, window)
    metrics = performance_metrics(labelled, settings)
    drift = concept_drift(metrics, reference_profile["champion_metrics"], settings)
    versions = scored.groupby(["model_algorithm", "model_version"]).size()
    logger.info(
        "Performance: %s; metrics %s",
        counts,
        "available" if metrics["available"] else f"not available ({metrics['reason']})",
    )
    return {
        "window": window.describe(),
        "label_maturity": counts,
        "model_versions": [
            {"model_algorithm": a, "model_version": v, "predictions": int(n)}
            for (a, v), n in versions.items()
        ],
        "metrics": metrics,
        "champion_metrics": reference_profile["champion_metrics"],
        "concept_drift": drift,
    }


def compute_data_drift(
    predictions: pd.DataFrame,
    features: pd.DataFrame,
    reference_profile: dict[str, Any],
    run_date: str,
    config: dict[str, Any],
) -> dict[str, Any]:
    """PSI and missing rates of the window's scored encounters against the reference profile."""
    settings, window, scored = _scored_window(predictions, run_date, config)
    profiled = [*reference_profile["numeric"], *reference_profile["categorical"]]
    absent = [c for c in profiled if c not in features.columns]
    if absent:
        raise ValueError(f"gold_features lacks {absent}, which the reference profile monitors")
    current = features[features["encounter_id"].isin(scored["encounter_id"])]
    summary = {
        "window": window.describe(),
        "predictions_in_window": len(scored),
        "encounters_with_features": len(current),
    }
    if len(current) < settings.min_samples_for_metrics:
        reason = (
            f"{len(current)} of {len(scored)} scored encounters in the window have gold features "
            f"(< min_samples_for_metrics {settings.min_samples_for_metrics})"
        )
        logger.warning("Drift not evaluated: %s", reason)
        return {"available": False, "reason": reason, **summary}
    tokens, threshold = reference_profile["missing_tokens"], settings.missing_rate_threshold
    psi_rule = (settings.psi_epsilon, settings.drift_threshold_psi)
    result = {}
    for kind, compare in (("numeric", numeric_drift), ("categorical", categorical_drift)):
        for name, reference in reference_profile[kind].items():
            reference_rate = reference_profile["missing_rate"][name]
            result[name] = {
                "kind": kind,
                **compare(current[name], reference, *psi_rule),
                **missing_rate_check(current[name], reference_rate, tokens, threshold),
            }
    score = numeric_drift(scored["probability"], reference_profile["score"], *psi_rule)
    drifted = [n for n, e in result.items() if e["drift"]]
    logger.info(
        "Drift: %d of %d features above PSI %s; score PSI %s",
        len(drifted),
        len(result),
        settings.drift_threshold_psi,
        score["psi"],
    )
    return {
        "available": True,
        "reason": None,
        **summary,
        "features": result,
        "score": score,
        "drifted_features": drifted,
        "missing_rate_breaches": [n for n, e in result.items() if e["missing_breach"]],
    }


def compute_feature_importance(
    predictions: pd.DataFrame,
    features: pd.DataFrame,
    serving_model: LoadedModel,
    reference_profile: dict[str, Any],
    run_date: str,
    config: dict[str, Any],
) -> dict[str, Any]:
    """Mean |SHAP| per gold feature of the served model, per period of the window (the months).

    Logistic regression needs its inputs' training means, which the reference profile holds for
    the champion: a pinned model other than the champion is then not explained.
    """
    settings, window, scored = _scored_window(predictions, run_date, config)
    record = serving_model.record
    model = {"algorithm": record["algorithm"], "version": record["version"]}
    profiled = {k: reference_profile.get("champion", {}).get(k) for k in model} == model
    explainer = shap_values.explainer_of(
        serving_model.model, reference_profile.get("input_means") if profiled else None
    )
    if isinstance(explainer, str):
        logger.warning("Feature importance not available: %s", explainer)
        return {"available": False, "reason": explainer, "model": model}
    # gold rows as they are: the bundle's preprocessor selects its input columns by name
    current = features[features["encounter_id"].isin(scored["encounter_id"])].reset_index(drop=True)
    rules, admitted = settings.importance, current["admission_date"]
    sample = current[explained(admitted, window, rules)]
    contributions = (  # nothing scored in the window yet: every period is "not available"
        shap_values.feature_contributions(
            explainer, shap_values.encode(serving_model.model, sample)
        ).set_axis(sample.index)
        if len(sample)
        else pd.DataFrame(index=sample.index)
    )
    periods = period_importance(
        contributions, admitted, window, rules, settings.min_samples_for_metrics
    )
    change = ranking_change(periods[-2], periods[-1], rules)
    logger.info(
        "Feature importance: %d encounters explained in %d period(s); ranking %s",
        len(sample),
        len(periods),
        "changed" if change["changed"] else "unchanged or not compared",
    )
    return {
        "available": True,
        "reason": None,
        "model": model,
        "method": shap_values.method_of(explainer),
        "periods": periods,
        "ranking_change": change,
    }


def decide_retraining(
    performance: dict[str, Any],
    drift: dict[str, Any],
    reference_profile: dict[str, Any],
    run_date: str,
    config: dict[str, Any],
) -> dict[str, Any]:
    """The retrain signal the Airflow gate reads: the decision and every threshold breached.

    Within ``retrain_cooldown_days`` of the training run that built the current reference, breaches
    are reported but do not recommend retraining again: drift that a retrain could not absorb
    (its windows still mostly predate the change) would otherwise retrain every week.
    """
    run, settings = RunDate.parse(run_date), MonitoringConfig.parse(config)
    findings = list_findings(performance, drift, settings.drift_threshold_psi)
    reasons = [f["reason"] for f in findings if f["retrain"]]
    trained = reference_profile.get("champion", {}).get("training_run_date")
    days_since = (run.day - date.fromisoformat(trained)).days if trained else None
    cooldown = settings.retrain_cooldown_days
    cooling_down = bool(reasons) and days_since is not None and days_since < cooldown
    signal = {
        "run_date": run.iso,
        "retrain_recommended": bool(reasons) and not cooling_down,
        "reasons": reasons,
        "last_training_run_date": trained,
        "cooldown": (
            f"last training run {days_since} day(s) ago (< retrain_cooldown_days {cooldown}): "
            "breaches reported, retraining not re-triggered"
            if cooling_down
            else None
        ),
    }
    logger.info(
        "Retraining recommended: %s (%d reason(s)%s)",
        signal["retrain_recommended"],
        len(reasons),
        "; cooling down" if cooling_down else "",
    )
    return signal


def build_alerts(
    performance: dict[str, Any],
    drift: dict[str, Any],
    retrain_signal: dict[str, Any],
    config: dict[str, Any],
    data_quality: dict[str, Any],
    importance: dict[str, Any],
) -> dict[str, Any]:
    """Alerts of this run with their severity, the weekly report summary last.

    ``data_quality`` is the last data_processing run's quality report: its ordering warnings
    alert (warning severity) but, unlike the findings above, never feed the retrain decision;
    nor does a change in the feature importance ranking (``importance``).
    """
    threshold = MonitoringConfig.parse(config).drift_threshold_psi
    findings = [
        *list_findings(performance, drift, threshold),
        *data_quality_findings(data_quality),
        *importance_findings(importance),
    ]
    summary = _summary(performance, drift, retrain_signal)
    return {
        "run_date": retrain_signal["run_date"],
        "alerts": alerting.build_alert_list(findings, summary),
    }


def assemble_report(
    performance: dict[str, Any],
    drift: dict[str, Any],
    retrain_signal: dict[str, Any],
    alerts: dict[str, Any],
    config: dict[str, Any],
    data_quality: dict[str, Any],
    importance: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The JSON report, returned as ``latest.json`` and as the dated ``report_<date>.json``."""
    thresholds = MonitoringConfig.parse(config).thresholds()
    run_date = retrain_signal["run_date"]
    report = {
        "run_date": run_date,
        "window": performance["window"],
        "thresholds": thresholds,
        "model_versions": performance["model_versions"],
        "label_maturity": performance["label_maturity"],
        "performance": performance["metrics"],
        "champion_metrics": performance["champion_metrics"],
        "concept_drift": performance["concept_drift"],
        "data_drift": drift,
        "retrain": retrain_signal,
        "alerts": alerts["alerts"],
        "data_quality": {
            "run_date": data_quality["run_date"],
            "ordering_warnings": data_quality.get("ordering_warnings", []),
        },
        "feature_importance": importance,
    }
    return report, {f"report_{run_date}": report}


def render_report(
    report: dict[str, Any],
) -> tuple[dict[str, str], Figure, Figure, Figure, Figure]:
    """The HTML page (dated and latest) and its four figures, also saved as PNG for kedro viz."""
    figures = rendering.figures(report)
    page = rendering.render_html(report, figures)
    pages = {f"report_{report['run_date']}": page, "latest": page}
    return pages, figures["psi"], figures["score"], figures["roc"], figures["calibration"]


def route_alerts(alerts: dict[str, Any], alerting_config: dict[str, Any]) -> dict[str, Any]:
    """The alerts routed and rendered per channel (the outbox); saving it delivers them
    (:class:`~readmit_kedro.io.alert_delivery.AlertDeliveryDataset`: log, webhook, e-mail, and
    the delivery log that puts the sending in lineage)."""
    return alerting.route(alerts, AlertingConfig.parse(alerting_config))


def _scored_window(
    predictions: pd.DataFrame, run_date: Any, config: Any
) -> tuple[MonitoringConfig, Window, pd.DataFrame]:
    """The parsed ``monitoring_config``, the run's window and its latest predictions.

    ``run_date`` and ``monitoring_config`` are parsed first: a bad value raises ConfigError before
    any input is used.
    """
    run, settings = RunDate.parse(run_date), MonitoringConfig.parse(config)
    window = Window.ending(run.day, settings.lookback_days, settings.label_maturity_days)
    return settings, window, window_predictions(predictions, window)


def _summary(
    performance: dict[str, Any], drift: dict[str, Any], retrain_signal: dict[str, Any]
) -> str:
    counts, metrics = performance["label_maturity"], performance["metrics"]
    window = performance["window"]
    lines = [
        f"Monitoring run {window['run_date']}: {counts['predictions_in_window']} predictions "
        f"admitted after {window['admitted_after']}; {counts['mature_labelled']} with mature "
        f"labels ({counts['immature']} immature, {counts['mature_unlabelled']} unlabelled).",
    ]
    if metrics["available"]:
        champion = performance["champion_metrics"]
        lines.append(
            "Metrics (champion test): "
            + ", ".join(f"{m} {describe_metric(metrics, m)} ({champion[m]:.3f})" for m in champion)
        )
    else:
        lines.append(f"Metrics not available: {metrics['reason']}")
    if drift["available"]:
        score_psi = drift["score"]["psi"]
        lines.append(
            f"Drift: {len(drift['drifted_features'])} of {len(drift['features'])} features above "
            f"the PSI threshold; score PSI {'n/a' if score_psi is None else f'{score_psi:.3f}'}; "
            f"{len(drift['missing_rate_breaches'])} missing-rate breach(es)."
        )
    else:
        lines.append(f"Drift not evaluated: {drift['reason']}")
    verdict = "yes" if retrain_signal["retrain_recommended"] else "no"
    cooldown = retrain_signal.get("cooldown")
    lines.append(f"Retraining recommended: {verdict}" + (f" ({cooldown})." if cooldown else "."))
    return "\n".join(lines)
