"""Alerts with the design's severities, routed and rendered for the channels (pure functions).

Severities ("Monitoring & Alerting"): critical - a metric fell more than
``critical_performance_drop`` (accuracy > 10% in the design); warning - data, score or concept
drift, a thresholded metric's shift, missing rates, a window that could not be evaluated, the
ordering warnings of silver's data-quality report, a change in the ranking of the served model's
top features (mean |SHAP|); info - the weekly report. ``alerting.routing`` sends each severity
to a Slack-compatible webhook and/or e-mail; each channel gets one message per run with all
alerts routed to it. :func:`route` only decides and renders: the delivery (every alert logged, the
messages sent to the channels whose credentials are set, a delivery log written) is the save of
the node's output dataset,
:class:`~readmit_kedro.io.alert_delivery.AlertDeliveryDataset`, which alone receives the secrets.
Messages carry aggregates only (feature names, rates, metrics), never a patient row.
"""

from __future__ import annotations

from typing import Any

from readmit_kedro.pipelines.monitoring.config import CHANNELS, SEVERITIES, AlertingConfig
from readmit_kedro.pipelines.monitoring.findings import Finding

_TITLES = {
    "concept_drift": "Model performance dropped",
    "metric_shift": "Metric at the decision threshold shifted",
    "data_drift": "Data drift detected",
    "score_drift": "Score distribution drift",
    "missing_rate": "Feature missing rate above limit",
    "not_evaluated": "Drift not evaluated",
    "data_quality": "Source data quality warning (silver ordering checks)",
    "importance_shift": "Feature importance ranking changed",
}


def build_alert_list(findings: list[Finding], summary: str) -> list[dict[str, str]]:
    """One alert per kind of finding (worst severity of its findings), then the info report."""
    alerts = []
    for kind, title in _TITLES.items():
        of_kind = [f for f in findings if f["kind"] == kind]
        if of_kind:
            severity = min((f["severity"] for f in of_kind), key=SEVERITIES.index)
            message = "\n".join(f["reason"] for f in of_kind)
            alerts.append({"severity": severity, "title": title, "message": message})
    alerts.append({"severity": "info", "title": "Weekly monitoring report", "message": summary})
    return alerts


def route(alerts: dict[str, Any], alerting: AlertingConfig) -> dict[str, Any]:
    """The outbox of a run: every alert (all are logged) and, per channel, its rendered message.

    ``messages[channel]`` is ``{"alerts": n}`` plus ``subject`` and ``text`` when n > 0; e-mail
    also gets the configured ``sender`` and ``recipients``. Nothing here is secret.
    """
    run_date, items = alerts["run_date"], alerts["alerts"]
    messages: dict[str, dict[str, Any]] = {}
    for channel in CHANNELS:
        routed = [a for a in items if (a["severity"], channel) in alerting.routes]
        message: dict[str, Any] = {"alerts": len(routed)}
        if routed:
            message["subject"], message["text"] = _render(run_date, routed, alerting.subject_prefix)
        messages[channel] = message
    messages["email"].update(sender=alerting.sender, recipients=list(alerting.recipients))
    return {
        "run_date": run_date,
        "timeout_seconds": alerting.timeout_seconds,
        "alerts": items,
        "messages": messages,
    }


def _render(run_date: str, alerts: list[dict[str, str]], prefix: str) -> tuple[str, str]:
    counts = ", ".join(
        f"{sum(a['severity'] == s for a in alerts)} {s}"
        for s in SEVERITIES
        if any(a["severity"] == s for a in alerts)
    )
    worst = min((a["severity"] for a in alerts), key=SEVERITIES.index)
    subject = f"{prefix} {run_date}: {worst.upper()} ({counts})"
    blocks = [f"[{a['severity'].upper()}] {a['title']}\n{a['message']}" for a in alerts]
    return subject, subject + "\n\n" + "\n\n".join(blocks)
