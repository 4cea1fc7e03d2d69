"""Alerts with the design's severities, and their delivery to the channels configured per env.

Severities ("Monitoring & Alerting"): critical - a metric fell more than
``critical_performance_drop`` (accuracy > 10% in the design); warning - data, score or concept
drift, a thresholded metric's shift, missing rates, a window that could not be evaluated, the
ordering warnings of silver's data-quality report; info -
the weekly report. Every alert is logged; ``alerting.routing`` sends each severity to a
Slack-compatible webhook and/or e-mail when that channel is configured. Each channel gets one
message per run with all alerts routed to it. A channel that fails is logged and recorded in the
delivery log, never raised: the report is already written by then, and a flaky mail relay must
not fail the monitoring DAG.
Messages carry aggregates only (feature names, rates, metrics), never a patient row.
"""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.request
from email.message import EmailMessage
from http.client import HTTPException
from typing import Any

from readmit_kedro.pipelines.monitoring.config import SEVERITIES, AlertingConfig, Email, Webhook
from readmit_kedro.pipelines.monitoring.findings import Finding

logger = logging.getLogger(__name__)

_LOG_LEVELS = {"critical": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}
_TITLES = {
    "concept_drift": "Model performance dropped",
    "metric_shift": "Metric at the decision threshold shifted",
    "data_drift": "Data drift detected",
    "score_drift": "Score distribution drift",
    "missing_rate": "Feature missing rate above limit",
    "not_evaluated": "Drift not evaluated",
    "data_quality": "Source data quality warning (silver ordering checks)",
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


def deliver(alerts: dict[str, Any], alerting: AlertingConfig) -> list[dict[str, Any]]:
    """Log every alert, send the routed ones; return what happened on each channel."""
    run_date, items = alerts["run_date"], alerts["alerts"]
    for alert in items:
        logger.log(
            _LOG_LEVELS[alert["severity"]],
            "[%s] %s: %s",
            alert["severity"].upper(),
            alert["title"],
            alert["message"],
        )
    log = [{"channel": "log", "alerts": len(items), "status": "sent", "detail": None}]
    senders = {
        "webhook": (alerting.webhook, _post_webhook),
        "email": (alerting.email, _send_email),
    }
    for channel, (settings, send) in senders.items():
        routed = [a for a in items if (a["severity"], channel) in alerting.routes]
        entry: dict[str, Any] = {"channel": channel, "alerts": len(routed), "detail": None}
        if not routed:
            entry["status"] = "nothing_routed"
        elif not settings.configured:
            entry["status"] = "not_configured"
        else:
            subject, text = _render(run_date, routed, alerting.subject_prefix)
            try:
                send(settings, subject, text, alerting.timeout_seconds)
                entry["status"] = "sent"
            except (OSError, HTTPException, ValueError) as exc:
                entry.update(status="failed", detail=f"{type(exc).__name__}: {exc}")
                logger.warning(
                    "Alert channel %s failed (report kept): %s", channel, entry["detail"]
                )
        log.append(entry)
    return log


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


def _post_webhook(settings: Webhook, subject: str, text: str, timeout: float) -> None:
    request = urllib.request.Request(
        settings.url,
        data=json.dumps({"text": text}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read()


def _send_email(settings: Email, subject: str, text: str, timeout: float) -> None:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.sender
    message["To"] = ", ".join(settings.recipients)
    message.set_content(text)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout) as smtp:
        if settings.use_starttls:
            smtp.starttls()
        smtp.send_message(message)
