"""Alerts of the generated DAGs go through Airflow's own notifiers (http provider's HttpNotifier,
smtp provider's SmtpNotifier), with secrets only in Airflow Connections.

Receivers on loopback: an HTTP server records webhook POSTs, aiosmtpd records mail. The DAG code
runs in Airflow's venv (airflow_probe.py notify); connections come from AIRFLOW_CONN_* variables,
as a secrets backend would provide them.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from .conftest import DAGS_DIR, probe


@pytest.fixture
def webhook():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "json": json.loads(body)})
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/alerts", received
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    received: list = []

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope)
            return "250 OK"

    with socket.socket() as probe_socket:
        probe_socket.bind(("127.0.0.1", 0))
        port = probe_socket.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


def _connections(webhook_url: str, smtp_port: int) -> dict[str, str]:
    webhook = {"conn_type": "http", "host": webhook_url}
    # Loopback test relay without TLS; a real relay keeps the defaults: STARTTLS with
    # ssl.create_default_context() (certificate and host name verified) by the smtp provider.
    mail = {
        "conn_type": "smtp",
        "host": "127.0.0.1",
        "port": smtp_port,
        "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "airflow@example.org"},
    }
    return {
        "AIRFLOW_CONN_READMIT_ALERTS_WEBHOOK": json.dumps(webhook),
        "AIRFLOW_CONN_READMIT_ALERTS_SMTP": json.dumps(mail),
    }


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
    failure, info, critical = probe(
        airflow_home,
        "notify",
        str(_dag_file("data_processing")),
        "--cases",
        json.dumps(cases),
        **_connections(url, port),
    )
    assert failure == {"value": 1} and info == {"value": 1} and critical == {"value": 2}
    texts = [post["json"]["text"] for post in posts]
    assert posts[0]["path"] == "/hooks/alerts"
    assert texts[0].startswith("[WARNING] diab_medallion_ecs_dev: run failed")
    assert "task_failure" in texts[0]
    assert texts[1].startswith("[CRITICAL] diab_medallion_ecs_dev: inference down")
    subjects = [m.content.decode() for m in mails]
    assert len(mails) == 2
    assert "[INFO] diab_medallion_ecs_dev: new champion" in subjects[0]
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
        **_connections(url, 1),
    )
    if allowed:  # the check passes; the POST then fails (no network), which is not the point
        assert "must be https" not in result.get("error", "")
    else:
        assert "a webhook must be https" in result["error"]
