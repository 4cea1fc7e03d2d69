"""Runtime helpers of the generated DAGs, called in Airflow's venv: the --params builder and gates.

Gates read a local file (dev) or S3 through the amazon provider's S3Hook (prod); S3 is a moto
server on 127.0.0.1, reached through a real Airflow connection (AIRFLOW_CONN_AWS_DEFAULT).
"""

from __future__ import annotations

import ast
import json
import socket
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kedro.framework.cli.utils import _split_params

from tests.support.net import free_port

from .conftest import DAGS_DIR, PROJECT_ROOT, probe

BUCKET = "diab-readmit-123456-monitoring"


def _gated_dag(env: str) -> Path:
    """A committed DAG file with a gate (data_processing's or monitoring's)."""
    for path in sorted((DAGS_DIR / env).glob("*_dag.py")):
        if "def signal_allows" in path.read_text():
            return path
    pytest.fail(f"no DAG in dags/{env} has a gate")


def _gate_config(path: Path) -> tuple[str, str, str]:
    """(signal, flag, location) of the file's gate, read from its source (literals only)."""
    tree = ast.parse(path.read_text())
    signals = next(
        ast.literal_eval(n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == "SIGNALS"
    )
    op_kwargs = next(
        ast.literal_eval(k.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Call)
        for k in n.keywords
        if k.arg == "op_kwargs"
    )
    return op_kwargs["signal"], op_kwargs["flag"], signals[op_kwargs["signal"]]


# On data processing's DAG (the first gated one): its accepted keys are trigger_conf's and its
# overrides (conf/base/airflow.yml); tests/airflow/test_trigger_conf.py covers every DAG.
PARAM_CASES = [
    ({}, {"run_date": "2026-01-04"}),
    ({"run_date": "2008-12-31"}, {"run_date": "2008-12-31"}),
    (
        {
            "triggered_by": "diab_model_monitoring",
            "reason": "catch-up, ticket #12: rebuild",
            "full_rebuild": True,
            "training_trigger.min_new_rows": 3,
        },
        {"run_date": "2026-01-04", "full_rebuild": True, "training_trigger": {"min_new_rows": 3}},
    ),
    ({"model.max_depth": 5, "path": "s3://b/k.json"}, "key 'model.max_depth' is not accepted"),
    ({"run_date": "2008/12/31"}, "must be a date YYYY-MM-DD"),
    ({"run_date": "2008-02-30"}, "must be a date YYYY-MM-DD"),
    ({"reason": "x" * 201}, "at most 200 characters"),
    ({"reason": "two\nlines"}, "printable text"),
    ({"reason": ["a"]}, "printable text"),
    ({"triggered_by": "a,b=c"}, "must be a DAG id"),
    ({"full_rebuild": "true"}, "must be true or false"),
    ({"training_trigger.min_new_rows": -1}, "must be an integer"),
    ({"training_trigger.min_new_rows": True}, "must be an integer"),
    ({"bad-key": 1}, "key 'bad-key' is not accepted"),
]


def test_dag_run_conf_becomes_safe_kedro_params(airflow_home):
    path = _gated_dag("dev")
    cases = json.dumps([conf for conf, _ in PARAM_CASES])
    results = probe(airflow_home, "params", str(path), "--cases", cases)
    for (conf, expected), result in zip(PARAM_CASES, results, strict=True):
        if isinstance(expected, str):
            assert expected in result.get("error", ""), (conf, result)
            continue
        assert "error" not in result, (conf, result)
        assert _split_params(None, None, result["value"]) == expected, conf


def test_a_run_without_logical_date_uses_its_run_after(airflow_home):
    (result,) = probe(
        airflow_home, "params", str(_gated_dag("dev")), "--cases", "[{}]", "--logical-date", ""
    )
    assert result["value"] == f"run_date={datetime.now(UTC).date().isoformat()}"


def _gate(home: Path, path: Path, cases: list[dict]) -> list[dict]:
    """signal_allows() of the DAG file for each case, in one Airflow process."""
    signal, flag, _ = _gate_config(path)
    return probe(
        home, "gate", str(path), "--signal", signal, "--flag", flag, "--cases", json.dumps(cases)
    )


def _error(result: dict) -> str:
    assert "error" in result, result
    return result["error"]


def test_dev_gate_reads_the_signal_in_the_project_folder(airflow_home, tmp_path):
    path = _gated_dag("dev")
    _, flag, location = _gate_config(path)
    assert not location.startswith("s3://")
    target = str(tmp_path / location)
    env = {"READMIT_PROJECT_DIR": str(tmp_path)}

    def signal(**body) -> dict:
        return {"to": target, "text": json.dumps({"run_date": "2026-01-04"} | body)}

    missing, yes, no, stale, not_bool, variable_wins = _gate(
        airflow_home,
        path,
        [
            {"env": env},
            {"write": signal(**{flag: True, "reason": "12000 new rows >= 5000"})},
            {"write": signal(**{flag: False})},
            {"conf": {"run_date": "2008-12-31"}},
            {"write": signal(**{flag: "yes"})},
            # The Airflow Variable wins over the environment variable.
            {"env": {"AIRFLOW_VAR_READMIT_PROJECT_DIR": str(tmp_path / "elsewhere")}},
        ],
    )
    assert "FileNotFoundError" in _error(missing)
    assert yes == {"value": True} and no == {"value": False}
    assert "is for run_date '2026-01-04', not 2008-12-31" in _error(stale)
    assert "must be true or false" in _error(not_bool)
    assert "elsewhere" in _error(variable_wins)


def _literal(path: Path, name: str):
    """The value of a module-level literal assignment of a generated DAG file."""
    return next(
        ast.literal_eval(n.value)
        for n in ast.walk(ast.parse(path.read_text()))
        if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", None) == name
    )


def _training_dag(env: str) -> Path:
    (path,) = (DAGS_DIR / env).glob("*_training_dag.py")
    return path


def test_training_gate_decides_from_the_signal_and_the_registry(airflow_home, tmp_path):
    """Skip (False) when prerequisites are not met or every algorithm's latest version was
    trained on these inputs; run (True) otherwise. No container, no Kedro."""
    path = _training_dag("dev")
    signal_at = tmp_path / _literal(path, "SIGNALS")["new_data"]
    registry = tmp_path / _literal(path, "REGISTRY")
    env = {"READMIT_PROJECT_DIR": str(tmp_path)}
    algorithms = ["logistic_regression", "random_forest"]
    ready = {
        "prerequisites_met": True,
        "problems": [],
        "inputs_sha256": "abc",
        "algorithms": algorithms,
    }

    def signal(**training) -> dict:
        body = {"run_date": "2026-01-04", "training": ready | training}
        return {"to": str(signal_at), "text": json.dumps(body)}

    def registered(algorithm: str, digest: str) -> list[dict]:
        record = {"version": "v1", "algorithm": algorithm, "training_inputs_sha256": digest}
        folder = registry / algorithm
        return [
            {"to": str(folder / "latest"), "text": "v1\n"},
            {"to": str(folder / "versions.json"), "text": json.dumps([record])},
        ]

    short = {"prerequisites_met": False, "problems": ["window oot has 0 rows"]}
    outcomes = probe(
        airflow_home,
        "gate",
        str(path),
        "--signal",
        "training_prerequisites",
        "--flag",
        "-",
        "--cases",
        json.dumps(
            [
                {"env": env, "write": signal(**short)},
                {"write": signal()},  # nothing registered yet
                {"write": registered("logistic_regression", "abc")},  # one of two: still new
                {"write": registered("random_forest", "abc")},  # both: nothing new
                {"write": signal(inputs_sha256="def")},  # new rows: run
                {  # gold without partition digests: no digest on either side is not a repeat
                    "write": [
                        *registered("logistic_regression", None),
                        *registered("random_forest", None),
                        signal(inputs_sha256=None),
                    ]
                },
                {
                    "write": signal(**short),
                    "conf": {"run_date": "2026-01-04", "training_config.x": 1},
                },
                {
                    "write": signal(**short),
                    "conf": {"run_date": "2026-01-04", "reason": "retry", "triggered_by": "x"},
                },
                {"write": {"to": str(signal_at), "text": json.dumps({"run_date": "2026-01-04"})}},
                {"write": signal(), "conf": {"run_date": "2026-01-05"}},
            ]
        ),
    )
    closed_short, first, half, unchanged, new_inputs, unnamed, *rest = outcomes
    refused, audited, old_signal, stale = rest
    assert closed_short == {"value": False}
    assert first == {"value": True} and half == {"value": True}
    assert unchanged == {"value": False} and new_inputs == {"value": True}
    assert unnamed == {"value": True}
    # A key training does not accept fails the gate, the DAG's first task (no container starts);
    # reason and triggered_by are not parameters: the gate still decides (closed here).
    assert "key 'training_config.x' is not accepted" in _error(refused)
    assert audited == {"value": False}
    assert "has no training prerequisites" in _error(old_signal)
    assert "not 2026-01-05" in _error(stale)


@pytest.fixture
def moto_s3():
    """A moto server on loopback (the project's test dependency), and a boto3 client for it."""
    import boto3

    port = free_port()
    server = subprocess.Popen(
        [str(PROJECT_ROOT / ".venv/bin/moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "moto_server did not start"
                time.sleep(0.2)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="ap-southeast-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        yield endpoint, client
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_prod_gate_reads_the_signal_from_s3(airflow_home, moto_s3):
    endpoint, client = moto_s3
    path = _gated_dag("prod")
    _, flag, location = _gate_config(path)
    bucket = location.removeprefix("s3://").partition("/")[0]
    assert bucket == BUCKET
    client.create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "ap-southeast-1"}
    )
    connection = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": endpoint, "region_name": "ap-southeast-1"},
    }
    body = {"run_date": "2026-01-04", flag: True, "reasons": ["psi 0.31 > 0.2"]}

    missing, yes, no, stale = _gate(
        airflow_home,
        path,
        [
            {"env": {"AIRFLOW_CONN_AWS_DEFAULT": json.dumps(connection)}},
            {"write": {"to": location, "text": json.dumps(body)}},
            {"write": {"to": location, "text": json.dumps(body | {flag: False})}},
            {"conf": {"run_date": "2026-02-01"}},
        ],
    )
    assert "404" in _error(missing) or "NoSuchKey" in _error(missing)
    assert yes == {"value": True} and no == {"value": False}
    assert "not 2026-02-01" in _error(stale)
    stored = client.get_object(Bucket=bucket, Key=location.split("/", 3)[3])["Body"].read()
    assert json.loads(stored)[flag] is False  # the gate read what S3 holds, and wrote nothing
