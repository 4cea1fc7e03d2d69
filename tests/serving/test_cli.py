"""``readmit serve``: the champion of the project's registry behind HTTP on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
from click.testing import CliRunner

from readmit_kedro.commands import cli
from readmit_kedro.io.registry import ModelRegistry
from readmit_kedro.serving.app import API_KEY_ENV, API_KEY_HEADER
from tests.pipelines.inference.conftest import register
from tests.support.net import free_port

STARTUP_SECONDS = 120


def test_serve_refuses_to_start_without_an_api_key(monkeypatch):
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code != 0 and API_KEY_ENV in result.output


def test_serve_loads_the_projects_champion_and_scores(kedro_project, champion_bundle, landing_rows):
    registry = ModelRegistry("data/06_models/registry")  # signed with the project's local key
    version = register(registry, "xgboost", champion_bundle, promote=True)
    port = free_port()
    command = "from readmit_kedro.commands import cli; cli()"
    server = subprocess.Popen(
        [sys.executable, "-c", command, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, API_KEY_ENV: "cli-test-key"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(base, server)
        health = httpx.get(f"{base}/health").json()
        assert (health["model"]["algorithm"], health["model"]["version"]) == ("xgboost", version)
        record = landing_rows[landing_rows["discharge_disposition_id"] == "1"].iloc[0].to_dict()
        record["patient_nbr"] = "987650123"  # distinctive, to look for in the log
        refused = httpx.post(f"{base}/v1/predict", json=record)
        assert refused.status_code == 401
        scored = httpx.post(
            f"{base}/v1/predict", json=record, headers={API_KEY_HEADER: "cli-test-key"}
        )
        assert scored.status_code == 200 and 0 < scored.json()["probability"] < 1
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0].decode()
    assert "987650123" not in output  # the server's own log carries no identifier
    assert "scored 1 record(s)" in output


def _wait_until_ready(base: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"readmit serve exited: {server.communicate()[0].decode()}")
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"readmit serve was not ready within {STARTUP_SECONDS} s")
