"""Fixtures for the Airflow tests: Airflow runs only in its own virtualenv, driven by subprocess.

The project's venv (this pytest) holds Kedro and loads the pipelines and the catalog; the DAGs are
imported, rendered and run by ``.airflow-venv/bin/python`` (``make airflow-venv``), with
AIRFLOW_HOME in a temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from cryptography import x509

from tests.support.tls import make_certificate, smtp_relay

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DAGS_DIR = PROJECT_ROOT / "dags"
TEMPLATE = PROJECT_ROOT / "templates" / "airflow" / "ecs_dag.j2"
PROBE = Path(__file__).with_name("airflow_probe.py")
AIRFLOW_VENV = Path(os.environ.get("READMIT_AIRFLOW_VENV", PROJECT_ROOT / ".airflow-venv"))
AIRFLOW_PYTHON = AIRFLOW_VENV / "bin" / "python"
ENVS = ("dev", "prod")
PAGERDUTY_EVENTS_HOST = "events.pagerduty.com"  # fixed in the pagerduty client (EventsApiV2Client)
# A Sunday: the logical date every rendering test uses.
LOGICAL_DATE = "2026-01-04T03:00:00+00:00"


def airflow_yml(env: str = "base") -> dict:
    return yaml.safe_load((PROJECT_ROOT / "conf" / env / "airflow.yml").read_text())


def dag_ids() -> dict[str, str]:
    """Pipeline name -> prod DAG id (conf/base/airflow.yml)."""
    return airflow_yml()["default"]["dag_ids"]


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of an Airflow subprocess: no trace of the project's venv, a private home."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"} and not key.startswith("AIRFLOW")
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        PATH=f"{AIRFLOW_VENV / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}",
        NO_PROXY="*",
    )
    env.update(extra)
    return env


def probe(home: Path, *args: str, **env: str):
    """Run tests/airflow/airflow_probe.py in Airflow's venv; its PROBE_RESULT, decoded."""
    result = subprocess.run(
        [str(AIRFLOW_PYTHON), str(PROBE), *args],
        env=airflow_env(home, **env),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    for line in result.stdout.splitlines():
        if line.startswith("PROBE_RESULT="):
            return json.loads(line.removeprefix("PROBE_RESULT="))
    raise AssertionError(f"probe {args[:2]} failed ({result.returncode}):\n{result.stderr[-4000:]}")


def describe(home: Path, folder: Path, conf: dict | None = None, **env: str) -> dict:
    """Import a DAG folder in Airflow's venv: import errors, DAGs, rendered task fields."""
    conf_json = json.dumps(conf or {})
    return probe(
        home, "describe", str(folder), "--conf", conf_json, "--logical-date", LOGICAL_DATE, **env
    )


@pytest.fixture(scope="session")
def airflow_python() -> Path:
    if not AIRFLOW_PYTHON.is_file():
        pytest.fail(f"{AIRFLOW_PYTHON} is missing: run `make airflow-venv` first")
    return AIRFLOW_PYTHON


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory, airflow_python) -> Path:
    return tmp_path_factory.mktemp("airflow_home")


@pytest.fixture(scope="session")
def kedro_pipelines() -> dict:
    """The registered pipelines that conf/base/airflow.yml gives a DAG id (what `make dags` uses)."""
    from kedro.framework.project import pipelines
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT_ROOT)
    project = dict(pipelines)  # loads the registry: an error here is the project's, not "none"
    registered = {name: project[name] for name in dag_ids() if name in project}
    assert registered, "no pipeline of conf/base/airflow.yml is registered"
    return registered


@pytest.fixture(scope="session")
def described(airflow_home) -> dict[str, dict]:
    """The committed dags/<env> folders as Airflow sees them, rendered for LOGICAL_DATE."""
    conf = {"triggered_by": "pytest", "reason": "pytest: rendering check"}
    return {
        env: describe(
            airflow_home,
            DAGS_DIR / env,
            conf=conf,
            AIRFLOW_VAR_READMIT_PROJECT_DIR=str(PROJECT_ROOT),
        )
        for env in ENVS
    }


def project_copy(root: Path, synthetic_rows: int, land_until: str) -> Path:
    """A copy of this checkout under root/project with synthetic extracts landed up to a month.

    The copy's dags/dev files default to the copy as their project folder; its .venv is this
    checkout's; conf/local stays out (machine-local config).
    """
    project = root / "project"
    project.mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, project / name)
    shutil.copytree(
        PROJECT_ROOT / "conf", project / "conf", ignore=shutil.ignore_patterns("*.yml.template")
    )
    for local in (project / "conf" / "local").glob("*.yml"):
        local.unlink()
    # This checkout's package: `kedro run` puts <project>/src first on sys.path, so the tasks run
    # this code even when the venv's editable install points at another checkout (a worktree).
    shutil.copytree(
        PROJECT_ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__")
    )
    (project / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    shutil.copytree(DAGS_DIR / "dev", project / "dags" / "dev")
    env = dict(os.environ, KEDRO_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1")
    readmit = str(PROJECT_ROOT / ".venv/bin/readmit")
    for args in (
        ["data", "acquire", "--synthetic-rows", str(synthetic_rows), "--seed", "11"],
        ["data", "land", "--until", land_until],
    ):
        subprocess.run([readmit, *args], cwd=project, env=env, check=True, capture_output=True)
    return project


@contextmanager
def webhook_receiver() -> Iterator[tuple[str, list[dict]]]:
    """A Slack-compatible webhook on 127.0.0.1: (its URL, the POSTs received so far)."""
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


@contextmanager
def smtp_receiver() -> Iterator[tuple[int, list]]:
    """An aiosmtpd server on 127.0.0.1 without TLS: (its port, the envelopes received so far)."""
    with smtp_relay() as relay:
        yield relay.port, relay.envelopes


def alert_connections(webhook_url: str, smtp_port: int) -> dict[str, str]:
    """AIRFLOW_CONN_* variables of the alert channels, as a secrets backend would provide them."""
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


@dataclass
class EventsApi:
    """A stand-in for PagerDuty's Events API v2 behind a loopback HTTPS proxy: the environment a
    subprocess needs to reach it (proxy, trusted test CA) and the events it received."""

    env: dict[str, str]
    events: list[dict] = field(default_factory=list)
    tunnels: list[str] = field(default_factory=list)


@contextmanager
def pagerduty_events_api(folder: Path) -> Iterator[EventsApi]:
    """An HTTP CONNECT proxy on 127.0.0.1 that tunnels only to events.pagerduty.com:443 and answers
    there itself: it terminates TLS with a certificate for events.pagerduty.com from a throwaway CA,
    records each POSTed event and replies 202 as the Events API v2 does. Nothing leaves loopback:
    any other CONNECT or plain request gets 403.

    The pagerduty client (pagerduty 7: httpx2) uses the proxy from HTTPS_PROXY and trusts the CA
    from SSL_CERT_FILE; REQUESTS_CA_BUNDLE is set too, for a requests-based client. NO_PROXY keeps
    the loopback webhook and mail relay direct."""
    certificate = make_certificate(folder, x509.DNSName(PAGERDUTY_EVENTS_HOST))
    tls = certificate.server_context()
    api = EventsApi(env={})

    class EventsHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            api.events.append({"path": self.path, "json": body})
            dedup_key = body.get("dedup_key") or f"readmit-test-{len(api.events)}"
            answer = {"status": "success", "message": "Event processed", "dedup_key": dedup_key}
            self._reply(202, answer)

        def _reply(self, status: int, answer: dict) -> None:
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    class ProxyHandler(BaseHTTPRequestHandler):
        def do_CONNECT(self):
            api.tunnels.append(self.path)
            self.close_connection = True
            if self.path != f"{PAGERDUTY_EVENTS_HOST}:443":
                self.send_error(403, "this test proxy tunnels only to the Events API")
                return
            self.send_response(200, "Connection established")
            self.end_headers()
            with tls.wrap_socket(self.connection, server_side=True) as inner:
                EventsHandler(inner, self.client_address, self.server)

        def do_GET(self):
            self.send_error(403, "this test proxy only tunnels")

        do_POST = do_GET

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), ProxyHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.env.update(
        HTTPS_PROXY=f"http://127.0.0.1:{server.server_port}",
        NO_PROXY="127.0.0.1,localhost",
        SSL_CERT_FILE=str(certificate.ca_file),
        REQUESTS_CA_BUNDLE=str(certificate.ca_file),
    )
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


def pagerduty_connection(routing_key: str) -> dict[str, str]:
    """The AIRFLOW_CONN_* variable of the PagerDuty channel (the provider's pagerduty_events type:
    the integration/routing key is the password)."""
    conn = {"conn_type": "pagerduty_events"}
    conn["password"] = routing_key  # the key as a variable, not a literal (test_secrets_scan)
    return {"AIRFLOW_CONN_READMIT_ALERTS_PAGERDUTY": json.dumps(conn)}
