"""Alert delivery for real: a webhook receiver and an SMTP server on loopback, and dead endpoints."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator
from email import message_from_bytes

import pytest
from aiosmtpd.controller import Controller

from readmit_kedro.pipelines.monitoring.nodes import deliver_alerts

from .conftest import RUN_DATE, free_port, webhook_receiver

ALERTS = {
    "run_date": RUN_DATE,
    "alerts": [
        {"severity": "critical", "title": "Model performance dropped",
         "message": "concept drift: roc_auc 0.501 is 0.179 below the champion's 0.680"},
        {"severity": "warning", "title": "Data drift detected",
         "message": "data drift: PSI of feature num_lab_procedures 1.496 > 0.2 (by 1.296)"},
        {"severity": "info", "title": "Weekly monitoring report", "message": "all counts here"},
    ],
}  # fmt: skip


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list]]:
    """An aiosmtpd server on loopback that keeps every envelope it accepts."""

    class Handler:
        def __init__(self) -> None:
            self.envelopes: list = []

        async def handle_DATA(self, server, session, envelope) -> str:
            self.envelopes.append(envelope)
            return "250 Message accepted for delivery"

    handler = Handler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, handler.envelopes
    controller.stop()


def alerting(params: dict, *, url: str | None = None, smtp_port: int | None = None) -> dict:
    config = copy.deepcopy(params["alerting"])
    config["channels"]["webhook"]["url"] = url
    if smtp_port is not None:
        config["channels"]["email"].update(
            smtp_host="127.0.0.1", smtp_port=smtp_port, recipients=["oncall@example.org"]
        )
    return config


def statuses(log: dict) -> dict[str, str]:
    return {entry["channel"]: entry["status"] for entry in log["deliveries"]}


def test_alerts_reach_the_webhook_and_the_mailbox(params: dict, webhook, smtp_server) -> None:
    url, posted = webhook
    port, envelopes = smtp_server
    log = deliver_alerts(ALERTS, alerting(params, url=url, smtp_port=port))
    assert statuses(log) == {"log": "sent", "webhook": "sent", "email": "sent"}

    # Design routing: critical -> webhook + e-mail, warning -> webhook (Slack), info -> e-mail.
    assert len(posted) == 1
    assert posted[0]["path"] == "/hooks/monitoring"
    assert posted[0]["content_type"] == "application/json"
    text = posted[0]["body"]["text"]
    assert set(posted[0]["body"]) == {"text"}
    assert "[CRITICAL] Model performance dropped" in text
    assert "[WARNING] Data drift detected" in text
    assert "Weekly monitoring report" not in text

    assert len(envelopes) == 1
    assert envelopes[0].rcpt_tos == ["oncall@example.org"]
    mail = message_from_bytes(envelopes[0].content)
    assert mail["Subject"] == f"[readmit-monitoring] {RUN_DATE}: CRITICAL (1 critical, 1 info)"
    body = mail.get_payload()
    assert "[CRITICAL] Model performance dropped" in body
    assert "[INFO] Weekly monitoring report" in body
    assert "Data drift detected" not in body


def test_dead_endpoints_are_logged_and_do_not_fail_the_run(
    params: dict, caplog: pytest.LogCaptureFixture
) -> None:
    dead = free_port()
    started = time.monotonic()
    log = deliver_alerts(ALERTS, alerting(params, url=f"http://127.0.0.1:{dead}/", smtp_port=dead))
    assert time.monotonic() - started < 2 * params["alerting"]["timeout_seconds"]
    assert statuses(log) == {"log": "sent", "webhook": "failed", "email": "failed"}
    details = [e["detail"] for e in log["deliveries"] if e["status"] == "failed"]
    assert all("refused" in d.lower() for d in details)
    assert "Alert channel webhook failed (report kept)" in caplog.text
    assert "Alert channel email failed (report kept)" in caplog.text


def test_a_webhook_answering_an_error_counts_as_failed(params: dict) -> None:
    with webhook_receiver(status=500) as (url, posted):
        log = deliver_alerts(ALERTS, alerting(params, url=url))
    assert len(posted) == 1
    entry = next(e for e in log["deliveries"] if e["channel"] == "webhook")
    assert entry["status"] == "failed" and "500" in entry["detail"]


def test_without_channels_alerts_are_only_logged(
    params: dict, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="readmit_kedro")
    log = deliver_alerts(ALERTS, params["alerting"])  # base config: nothing configured
    assert statuses(log) == {"log": "sent", "webhook": "not_configured", "email": "not_configured"}
    levels = {r.getMessage().split("]")[0]: r.levelname for r in caplog.records}
    assert levels == {"[CRITICAL": "ERROR", "[WARNING": "WARNING", "[INFO": "INFO"}


def test_a_quiet_week_sends_only_the_info_report(params: dict, webhook, smtp_server) -> None:
    url, posted = webhook
    port, envelopes = smtp_server
    info_only = {"run_date": RUN_DATE, "alerts": ALERTS["alerts"][-1:]}
    log = deliver_alerts(info_only, alerting(params, url=url, smtp_port=port))
    assert statuses(log) == {"log": "sent", "webhook": "nothing_routed", "email": "sent"}
    assert posted == [] and len(envelopes) == 1
