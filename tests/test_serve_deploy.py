"""The scoring service on ECS: its task definition, its service, and the probe the task runs.

deploy/ecs/diab-readmit-demo-serve.json runs `readmit serve` behind an Application Load Balancer
(deploy/ecs/README.md, "The scoring service"). The image rules every task definition follows (by
digest, read-only root, the image's volumes) are in tests/airflow/test_image.py.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import ParamValidator

from readmit_kedro.serving.app import API_KEY_ENV

ROOT = Path(__file__).resolve().parents[1]
TASK_DEFINITION = json.loads((ROOT / "deploy/ecs/diab-readmit-demo-serve.json").read_text())
SERVICE = json.loads((ROOT / "deploy/ecs/service/diab-readmit-demo-serve.json").read_text())
IAM = ROOT / "deploy" / "iam"
(CONTAINER,) = TASK_DEFINITION["containerDefinitions"]
ECS = botocore.session.get_session().get_service_model("ecs")


def _valid(document: dict, operation: str) -> None:
    report = ParamValidator().validate(document, ECS.operation_model(operation).input_shape)
    assert not report.has_errors(), report.generate_report()


def _port() -> int:
    (mapping,) = CONTAINER["portMappings"]
    return mapping["containerPort"]


def test_the_task_definition_is_what_ecs_registers() -> None:
    _valid(TASK_DEFINITION, "RegisterTaskDefinition")
    assert TASK_DEFINITION["family"] == "diab-readmit-demo-serve"
    assert TASK_DEFINITION["requiresCompatibilities"] == ["FARGATE"]
    assert TASK_DEFINITION["networkMode"] == "awsvpc"
    assert TASK_DEFINITION["taskRoleArn"].endswith(":role/diab-readmit-demo-serve-task")
    assert CONTAINER["essential"] is True
    # the service listens on every interface of the task's ENI, on the port the balancer targets
    command = CONTAINER["command"]
    assert command[:2] == ["readmit", "serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    assert int(command[command.index("--port") + 1]) == _port()
    assert command[command.index("--env") + 1] == "prod"
    options = CONTAINER["logConfiguration"]["options"]
    assert CONTAINER["logConfiguration"]["logDriver"] == "awslogs"
    assert options["awslogs-group"] == "/ecs/diab-readmit-demo-serve"


def test_the_api_key_comes_from_secrets_manager_never_from_the_environment() -> None:
    assert API_KEY_ENV not in {e["name"] for e in CONTAINER["environment"]}
    secrets = {s["name"]: s["valueFrom"] for s in CONTAINER["secrets"]}
    assert set(secrets) == {API_KEY_ENV}
    pattern = r"arn:aws:secretsmanager:ap-southeast-1:\d{12}:secret:readmit/serve_api_key-\w{6}"
    assert re.fullmatch(pattern, secrets[API_KEY_ENV]), secrets[API_KEY_ENV]
    # the execution role (which ECS uses to inject it) may read it; the service's own role not
    execution = json.loads((IAM / "diab-readmit-demo-ecs-execution.json").read_text())
    readable = [
        resource
        for s in execution["Statement"]
        if s["Action"] == "secretsmanager:GetSecretValue"
        for resource in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]
    assert any(fnmatch.fnmatchcase(secrets[API_KEY_ENV], r) for r in readable)
    task_role = (IAM / "diab-readmit-demo-serve-task.json").read_text()
    assert "secretsmanager" not in task_role


def test_the_service_role_reads_the_registry_and_nothing_else() -> None:
    role = json.loads((IAM / "diab-readmit-demo-serve-task.json").read_text())
    actions = {
        action
        for s in role["Statement"]
        for action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert actions == {
        "s3:ListBucket",
        "s3:GetObject",
        "kms:Decrypt",
        "kms:Verify",
        "kms:GetPublicKey",
    }
    buckets = {
        resource.split(":::")[1].split("/")[0]
        for s in role["Statement"]
        for resource in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
        if resource.startswith("arn:aws:s3:::")
    }
    assert buckets == {"diab-readmit-123456-model-registry"}


def test_the_service_rolls_out_behind_the_load_balancer() -> None:
    _valid(SERVICE, "CreateService")
    assert SERVICE["taskDefinition"] == TASK_DEFINITION["family"]
    assert SERVICE["launchType"] == "FARGATE" and SERVICE["desiredCount"] >= 2
    (target,) = SERVICE["loadBalancers"]
    assert (target["containerName"], target["containerPort"]) == (CONTAINER["name"], _port())
    network = SERVICE["networkConfiguration"]["awsvpcConfiguration"]
    assert network["assignPublicIp"] == "DISABLED"  # only the balancer reaches the tasks
    # rolling: a new task must pass the health checks before an old one stops; a failing
    # deployment is rolled back
    deployment = SERVICE["deploymentConfiguration"]
    assert SERVICE["deploymentController"] == {"type": "ECS"}
    assert deployment["minimumHealthyPercent"] == 100 and deployment["maximumPercent"] == 200
    assert deployment["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    # the model loads before /ready answers 200: neither check may kill a task still loading
    assert SERVICE["healthCheckGracePeriodSeconds"] >= CONTAINER["healthCheck"]["startPeriod"]


@contextmanager
def ready_endpoint(status: int) -> Iterator[tuple[int, list[str]]]:
    """A stand-in for the service on loopback: records each GET path, answers ``status``."""
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            paths.append(self.path)
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port, paths
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_container_health_check_asks_ready(status: int, healthy: bool) -> None:
    """The probe the task runs, run here (the image's python, no curl): healthy only on 200 from
    /ready, which answers 503 until the model is loaded and checked."""
    check = CONTAINER["healthCheck"]
    assert check["command"][:2] == ["CMD", "python"]
    argv = check["command"][1:]
    assert f"http://127.0.0.1:{_port()}/ready" in argv[-1]
    with ready_endpoint(status) as (port, paths):
        probe = argv[-1].replace(f":{_port()}/", f":{port}/")
        result = subprocess.run(
            [sys.executable, *argv[1:-1], probe], capture_output=True, timeout=30, check=False
        )
    assert paths == ["/ready"]
    assert (result.returncode == 0) is healthy
