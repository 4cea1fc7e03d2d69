"""Alerts of the generated DAGs go through Airflow's own notifiers (http provider's HttpNotifier,
smtp provider's SmtpNotifier), with secrets only in Airflow Connections.

Receivers on loopback: an HTTP server records webhook POSTs, aiosmtpd records mail. The DAG code
runs in Airflow's venv (airflow_probe.py notify); connections come from AIRFLOW_CONN_* variables,
as a secrets backend would provide them.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import DAGS_DIR, alert_connections, probe, smtp_receiver, webhook_receiver


@pytest.fixture
def webhook():
    with webhook_receiver() as receiver:
        yield receiver


@pytest.fixture
def smtp():
    with smtp_receiver() as receiver:
        yield receiver


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
    assert failure == {"value": 1} and info == {"value": 1} and critical == {"value": 2}
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
    assert {r["path"].rsplit(".", 1)[1] for r in results} == {"HttpNotifier", "SmtpNotifier"}
    assert {r["reference"] for r in results} == {"DagRunQueuedAtDeadline"}
    assert all(r["events"][-1]["state"] == "success" for r in results), results
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
