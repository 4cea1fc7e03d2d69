"""Alerts of the generated DAGs go through Airflow's own notifiers (http provider's HttpNotifier,
smtp provider's SmtpNotifier, pagerduty provider's PagerdutyNotifier for critical alerts), with
secrets only in Airflow Connections.

Receivers on loopback: an HTTP server records webhook POSTs, aiosmtpd records mail, and a CONNECT
proxy that terminates TLS for events.pagerduty.com (test CA) records PagerDuty events. The DAG code
runs in Airflow's venv (airflow_probe.py notify); connections come from AIRFLOW_CONN_* variables,
as a secrets backend would provide them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import (
    DAGS_DIR,
    alert_connections,
    pagerduty_connection,
    pagerduty_events_api,
    probe,
    smtp_receiver,
    webhook_receiver,
)

ROUTING_KEY = "R0uT1nGkEy0fTh3TeStS3rv1c3"  # an Events API v2 integration key's shape, 32 chars


@pytest.fixture
def webhook():
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def smtp():
    with smtp_receiver() as receiver:
        yield receiver


@pytest.fixture
def events_api(tmp_path):
    with pagerduty_events_api(tmp_path) as api:
        yield api


def _dag_file(name: str) -> Path:
    (path,) = (DAGS_DIR / "dev").glob(f"*_{name}_dag.py")
    return path


def test_a_failed_run_warns_on_the_webhook_and_info_goes_by_mail(airflow_home, webhook, smtp):
    url, posts = webhook
    port, mails = smtp
    cases = [
        {"failure": True, "reason": "task_failure"},
        {"severity": "info", "title": "new champion", "text": "xgboost v1 promoted"},
        {"severity": "critical", "title": "inference down", "text": "no success for 2 h"},
    ]
    # The training DAG: data processing's failure callbacks also count failed runs in an Airflow
    # Variable, which needs a running Airflow (tests/airflow/test_scheduler.py runs that one).
    failure, info, critical = probe(
        airflow_home,
        "notify",
        str(_dag_file("training")),
        "--cases",
        json.dumps(cases),
        **alert_connections(url, port),
    )
    # critical: webhook, e-mail and PagerDuty, which skips here (no PagerDuty connection).
    assert failure == {"value": 1} and info == {"value": 1} and critical == {"value": 3}
    texts = [post["json"]["text"] for post in posts]
    assert posts[0]["path"] == "/hooks/alerts"
    assert texts[0].startswith("[WARNING] diab_model_training_dev: run failed")
    assert "task_failure" in texts[0]
    assert texts[1].startswith("[CRITICAL] diab_model_training_dev: inference down")
    subjects = [m.content.decode() for m in mails]
    assert len(mails) == 2
    assert "[INFO] diab_model_training_dev: new champion" in subjects[0]
    assert "[CRITICAL]" in subjects[1]


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://example.org/hook", False),
        ("http://10.0.0.1/hook", False),
        ("https://hooks.example.org/services/x", True),
    ],
)
def test_a_webhook_must_be_https_except_on_loopback(airflow_home, url, allowed):
    (result,) = probe(
        airflow_home,
        "notify",
        str(_dag_file("training")),
        "--cases",
        json.dumps([{"failure": True}]),
        **alert_connections(url, 1),
    )
    if allowed:  # the check passes; the POST then fails (no network), which is not the point
        assert "must be https" not in result.get("error", "")
    else:
        assert "a webhook must be https" in result["error"]


def test_inference_down_for_two_hours_is_critical_on_webhook_and_email(airflow_home, webhook, smtp):
    """Seed, critical: "inference DAG down > 2 hours". A DeadlineAlert 2 h after a run was queued
    (pruned only when the run succeeds) to every critical channel, run as the triggerer runs it."""
    url, posts = webhook
    port, mails = smtp
    results = probe(
        airflow_home,
        "deadline",
        str(_dag_file("inference")),
        "--interval-s",
        str(2 * 3600),
        **alert_connections(url, port),
    )
    by_notifier = {r["path"].rsplit(".", 1)[1]: r for r in results}
    assert set(by_notifier) == {"HttpNotifier", "SmtpNotifier", "PagerdutyNotifier"}
    assert {r["reference"] for r in results} == {"DagRunQueuedAtDeadline"}
    assert by_notifier["HttpNotifier"]["events"][-1]["state"] == "success", results
    assert by_notifier["SmtpNotifier"]["events"][-1]["state"] == "success", results
    # No PagerDuty connection here: in the triggerer the provider's notifier cannot skip quietly,
    # its callback fails (logged) on the missing connection; webhook and e-mail still go.
    paged = by_notifier["PagerdutyNotifier"]["events"][-1]
    assert paged["state"] == "failed" and "readmit_alerts_pagerduty" in paged["body"], paged
    (post,) = posts
    assert (
        post["json"]["text"]
        == "[CRITICAL] diab_model_inference_dev: down: no successful run for 2:00:00"
    )
    (mail,) = mails
    assert "Subject: [CRITICAL] diab_model_inference_dev: down:" in mail.content.decode()


@pytest.mark.parametrize(
    ("extra", "refused"),
    [
        ({"disable_ssl": True, "disable_tls": True}, "mail must use TLS"),
        ({"disable_ssl": True, "ssl_context": "none"}, "mail must verify the server"),
        ({"disable_ssl": True}, None),  # STARTTLS with ssl.create_default_context()
    ],
)
def test_mail_must_use_verified_tls_except_on_loopback(airflow_home, extra, refused):
    mail = {"conn_type": "smtp", "host": "mail.example.org", "port": 587, "extra": extra}
    webhook = {"conn_type": "http", "host": "https://hooks.example.org/x"}
    (result,) = probe(
        airflow_home,
        "notify",
        str(_dag_file("training")),
        "--cases",
        json.dumps([{"severity": "info", "title": "t", "text": "x"}]),
        AIRFLOW_CONN_READMIT_ALERTS_SMTP=json.dumps(mail),
        AIRFLOW_CONN_READMIT_ALERTS_WEBHOOK=json.dumps(webhook),
    )
    if refused:
        assert refused in result["error"]
    else:  # the check passes; connecting then fails (no network), which is not the point
        assert "mail must" not in result.get("error", "")


# The data processing DAG's notifiers(); its failure callbacks also count failed runs in an Airflow
# Variable, which needs a running Airflow (test_scheduler.py), so its warning is called directly.
CASES = [
    {"severity": "warning", "title": "run failed", "text": "run manual__x failed"},
    {"severity": "warning", "title": "new data volume unusual", "text": "rows 10x the median"},
    {"severity": "info", "title": "new champion", "text": "xgboost v1 promoted"},
    {"severity": "critical", "title": "3 failed runs in a row", "text": "the last 3 runs failed"},
]


def _notify_cases(airflow_home, events_api, **connections: str) -> list:
    """The data processing DAG's notifiers for CASES with ``connections``, HTTPS going through
    the loopback PagerDuty stand-in's proxy."""
    return probe(
        airflow_home,
        "notify",
        str(_dag_file("data_processing")),
        "--cases",
        json.dumps(CASES),
        **connections,
        **events_api.env,
    )


def test_a_critical_alert_pages_through_pagerduty(airflow_home, webhook, smtp, events_api):
    """Seed "Alert Channels": critical -> paging. The provider's PagerdutyNotifier, its real client
    (pagerduty.EventsApiV2Client) over HTTPS to events.pagerduty.com, here a loopback stand-in."""
    url, posts = webhook
    port, mails = smtp
    results = _notify_cases(
        airflow_home,
        events_api,
        **alert_connections(url, port),
        **pagerduty_connection(ROUTING_KEY),
    )
    assert results == [{"value": 1}, {"value": 1}, {"value": 1}, {"value": 3}]
    assert events_api.tunnels == ["events.pagerduty.com:443"]
    (event,) = events_api.events  # the critical alert only: warnings and info never page
    assert event["path"] == "/v2/enqueue"
    sent = event["json"]
    assert sent["routing_key"] == ROUTING_KEY
    assert sent["event_action"] == "trigger"
    payload = sent["payload"]
    assert payload["severity"] == "critical"
    assert payload["summary"] == "[CRITICAL] diab_medallion_ecs_dev: 3 failed runs in a row"
    assert payload["source"] == "diab_medallion_ecs_dev"
    assert payload["component"] == "data_processing" and payload["group"] == "dev"
    assert payload["custom_details"] == {"text": "the last 3 runs failed"}
    # The other routes are unchanged: warning + critical on the webhook, info + critical by mail.
    assert [post["json"]["text"].split(":")[0] for post in posts] == [
        "[WARNING] diab_medallion_ecs_dev",
        "[WARNING] diab_medallion_ecs_dev",
        "[CRITICAL] diab_medallion_ecs_dev",
    ]
    assert len(mails) == 2


def test_without_a_pagerduty_connection_nothing_pages_and_the_rest_still_goes(
    airflow_home, webhook, smtp, events_api
):
    url, posts = webhook
    port, mails = smtp
    results = _notify_cases(airflow_home, events_api, **alert_connections(url, port))
    # The critical alert still has its three notifiers; the PagerDuty one skips (logged).
    assert results == [{"value": 1}, {"value": 1}, {"value": 1}, {"value": 3}]
    assert events_api.tunnels == [] and events_api.events == []
    assert len(posts) == 3 and len(mails) == 2
    assert "[CRITICAL] diab_medallion_ecs_dev: 3 failed runs in a row" in mails[1].content.decode()
