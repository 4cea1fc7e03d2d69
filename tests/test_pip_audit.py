"""`make audit` offline: with no vulnerability data reachable it says so and fails, never passes.

The preflight of scripts/pip_audit.sh is pointed (PIP_AUDIT_PROBE_BASE) at a closed local port and
at a local server whose answer has no vulnerability data, the two ways the real API is missing
from this build machine (pypi.org's per-version JSON endpoint answers 404 here).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.data.conftest import closed_port

ROOT = Path(__file__).resolve().parents[1]


def audit(probe_base: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "pip_audit.sh")],
        env={**os.environ, "VENV": sys.prefix, "PIP_AUDIT_PROBE_BASE": probe_base},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class _NoVulnerabilityData(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"info": {"name": "x"}}).encode()  # a project page, no vulnerabilities
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server_without_vulnerability_data():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoVulnerabilityData)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/pypi"
    server.shutdown()
    server.server_close()


def _assert_not_run(result: subprocess.CompletedProcess, cause: str) -> None:
    assert result.returncode == 3, result.stderr
    assert "AUDIT NOT RUN: no vulnerability data is reachable" in result.stderr
    assert cause in result.stderr
    assert "No known vulnerabilities" not in result.stdout + result.stderr


def test_unreachable_vulnerability_service_fails_loudly():
    _assert_not_run(audit(f"http://127.0.0.1:{closed_port()}/pypi"), "Connection refused")


def test_an_answer_without_vulnerability_data_fails_loudly(server_without_vulnerability_data):
    result = audit(server_without_vulnerability_data)
    _assert_not_run(result, "without a vulnerabilities field")
    first = re.search(r"^([A-Za-z0-9._-]+)==", (ROOT / "requirements.lock").read_text(), re.M)
    assert f"/{first.group(1)}/" in result.stderr  # the lock's first pin was asked for


def test_the_audit_itself_is_strict():
    script = (ROOT / "scripts" / "pip_audit.sh").read_text()
    assert script.rstrip().endswith('"${IGNORES[@]}"')
    assert "--strict" in script.split('exec "$AUDIT"')[1]
