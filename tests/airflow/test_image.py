"""The ECS image without Docker: its pins, the task definitions, and its build replayed.

Docker cannot run on the build machine, so the Dockerfile's stages are replayed in virtualenvs:
`kedro package` with only the hashed package lock installed (stage `package`), then the hashed
runtime lock and the wheel (no dependencies, then `pip check`) into a fresh venv, the packaged conf
unpacked next to pyproject.toml and an empty src/ (stage `runtime`, WORKDIR /app), and a pipeline
run from there with the same `kedro run --pipelines ... --params run_date=...` the Airflow tasks
send.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tarfile
import tomllib
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import ParamValidator

from .conftest import PROJECT_ROOT, airflow_yml

DOCKERFILE = (PROJECT_ROOT / "Dockerfile").read_text()
LOCK = (PROJECT_ROOT / "requirements.lock").read_text()
PACKAGE_LOCK = PROJECT_ROOT / "deploy" / "docker" / "requirements-package.lock"
RUNTIME_LOCK = PROJECT_ROOT / "deploy" / "docker" / "requirements-runtime.lock"
PYPROJECT = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
TASK_DEFINITIONS = sorted((PROJECT_ROOT / "deploy" / "ecs").glob("*.json"))
# The scoring service's family runs `readmit serve` as an ECS service, not Airflow tasks
# (tests/test_serve_deploy.py); the image rules below hold for it too.
SERVICE_TASK_DEFINITION = PROJECT_ROOT / "deploy" / "ecs" / "diab-readmit-demo-serve.json"
AIRFLOW_TASK_DEFINITIONS = [p for p in TASK_DEFINITIONS if p != SERVICE_TASK_DEFINITION]


def _arg(name: str) -> str:
    """The default of a Dockerfile ARG (the same ARG may appear in several stages: one value)."""
    values = set(re.findall(rf"^ARG {name}=(\S*)$", DOCKERFILE, flags=re.MULTILINE))
    assert len(values) == 1, f"ARG {name}: {values or 'missing'}"
    return values.pop()


def _locked(package: str, lock: str = LOCK) -> str:
    match = re.search(rf"^{re.escape(package)}==([^\s\\]+)", lock, flags=re.MULTILINE)
    assert match, f"{package} is not in the lock"
    return match.group(1)


def test_dockerfile_pins_match_the_project():
    package_lock = PACKAGE_LOCK.read_text()
    assert _locked("kedro", package_lock) == _locked("kedro") == "1.7.0"
    assert _locked("build", package_lock) == _locked("build")
    assert "kedro==1.7.0" in PYPROJECT["project"]["dependencies"]
    # The locks are compiled for this Python; the image must run the same minor version.
    assert f"--python-version {_arg('PYTHON_VERSION')} " in LOCK.splitlines()[1] + " "
    assert PYPROJECT["project"]["requires-python"] == f">={_arg('PYTHON_VERSION')}"
    assert _arg("PYTHON_IMAGE").startswith(f"python:{_arg('PYTHON_VERSION')}-slim-")
    for stage in ("package", "runtime"):
        assert f"FROM ${{PYTHON_IMAGE}} AS {stage}" in DOCKERFILE
    assert "FROM ${DEBIAN_IMAGE} AS jars" in DOCKERFILE


def test_runtime_lock_holds_every_dependency_of_the_project():
    """A dependency added to pyproject.toml without `make image-locks` would only surface after
    the slow build replay below (or in the image, at import time). The image also runs the
    scoring service, so the ``serve`` extra is in it too."""
    runtime_lock = RUNTIME_LOCK.read_text()
    project = PYPROJECT["project"]
    for requirement in [*project["dependencies"], *project["optional-dependencies"]["serve"]]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0)
        assert _locked(name, runtime_lock) == _locked(name), requirement


def test_every_package_the_image_installs_is_hash_checked():
    """Both Python stages install only from the hashed locks of deploy/docker (or the wheel built
    in stage 1, without dependencies); nothing is resolved or fetched unhashed."""
    installs = re.findall(r"pip install ([^\n]*)", DOCKERFILE)
    assert installs == [
        "--no-cache-dir --require-hashes --no-deps -r requirements-package.lock \\",
        "--no-cache-dir --require-hashes --no-deps -r /tmp/requirements-runtime.lock \\",
        "--no-cache-dir --no-deps /tmp/dist/*.whl \\",
    ]
    assert "COPY deploy/docker/requirements-package.lock ./" in DOCKERFILE
    assert "COPY deploy/docker/requirements-runtime.lock /tmp/" in DOCKERFILE
    assert DOCKERFILE.count("&& pip check") == 2
    assert "uv" not in re.findall(r"\b\w+\b", DOCKERFILE.split("AS package", 1)[1])


def test_runtime_user_cannot_write_its_code_or_conf():
    runtime = DOCKERFILE[DOCKERFILE.index("AS runtime") :]
    assert "chown -R kedro" not in runtime and "chown kedro:kedro /app " not in runtime + " "
    assert "chown -R root:root /app" in runtime and "chmod -R u=rwX,go=rX /app" in runtime
    assert re.findall(r"chown (\S+) (\S+)", runtime) == [
        ("-R", "root:root"),
        ("kedro:kedro", "/app/data"),
    ]
    assert 'VOLUME ["/tmp", "/app/data"]' in runtime
    assert runtime.index("VOLUME") < runtime.index("USER kedro")


def test_s3a_jars_match_the_hadoop_bundled_with_the_locked_pyspark():
    import pyspark

    assert pyspark.__version__ == _locked("pyspark")
    assert "pyspark==" + pyspark.__version__ in PYPROJECT["project"]["dependencies"]
    jars = Path(pyspark.__file__).parent / "jars"
    (client,) = jars.glob("hadoop-client-api-*.jar")
    bundled = client.name.removeprefix("hadoop-client-api-").removesuffix(".jar")
    assert _arg("HADOOP_VERSION") == bundled
    assert not list(jars.glob("hadoop-aws-*.jar"))  # not in pyspark: the image must add it
    # Every downloaded jar is pinned to a version and a SHA-256 that the build checks; an empty
    # pin (not yet written by `make pin-jars`) stops the build before any download.
    jars_stage = DOCKERFILE[DOCKERFILE.index("AS jars") : DOCKERFILE.index("AS runtime")]
    for jar, version_arg, sha_arg in (
        ("hadoop-aws", "HADOOP_VERSION", "HADOOP_AWS_SHA256"),
        ("bundle", "AWS_SDK_BUNDLE_VERSION", "AWS_SDK_BUNDLE_SHA256"),
        (
            "analyticsaccelerator-s3",
            "ANALYTICS_ACCELERATOR_VERSION",
            "ANALYTICS_ACCELERATOR_SHA256",
        ),
    ):
        assert re.fullmatch(r"\d+\.\d+\.\d+", _arg(version_arg))
        assert re.fullmatch(r"([0-9a-f]{64})?", _arg(sha_arg))
        assert f'"${{{sha_arg}}}" "{jar}-${{{version_arg}}}.jar"' in jars_stage
        assert f'"${{{sha_arg}}}"' in jars_stage.split("grep -Eq")[0]  # checked non-empty first
        assert f"/{jar}-${{{version_arg}}}.jar" in jars_stage  # the file that is downloaded
    assert "| sha256sum -c -" in jars_stage
    assert "sha1" not in jars_stage.lower()
    assert "<aws-java-sdk-v2.version>${AWS_SDK_BUNDLE_VERSION}<" in jars_stage


def test_runtime_stage_is_non_root_java_17_and_runs_kedro():
    runtime = DOCKERFILE[DOCKERFILE.index("AS runtime") :]
    assert "openjdk-17-jre-headless" in runtime
    assert re.search(r"^USER kedro$", runtime, flags=re.MULTILINE)
    assert "useradd --uid 10001" in runtime
    assert 'ENTRYPOINT ["tini", "--"]' in runtime and 'CMD ["kedro", "info"]' in runtime
    assert "WORKDIR /app" in runtime and "conf-readmit_kedro.tar.gz -C /app" in runtime


@pytest.mark.parametrize("path", AIRFLOW_TASK_DEFINITIONS, ids=lambda p: p.stem)
def test_task_definitions_are_valid_and_agree_with_airflow_yml(path):
    definition = json.loads(path.read_text())
    model = botocore.session.get_session().get_service_model("ecs")
    shape = model.operation_model("RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(definition, shape)
    assert not report.has_errors(), report.generate_report()

    ecs = airflow_yml()["default"]["ecs"]
    (family,) = [f for f in ecs["families"].values() if f["task_definition"] == path.stem]
    assert definition["family"] == path.stem
    assert (definition["cpu"], definition["memory"]) == (str(family["cpu"]), str(family["memory"]))
    assert definition["requiresCompatibilities"] == ["FARGATE"]
    assert definition["networkMode"] == "awsvpc"
    (container,) = definition["containerDefinitions"]
    assert container["name"] == ecs["container_name"]
    options = container["logConfiguration"]["options"]
    assert container["logConfiguration"]["logDriver"] == "awslogs"
    assert options["awslogs-group"] == family["awslogs_group"]
    assert options["awslogs-stream-prefix"] == ecs["awslogs_stream_prefix"]
    assert options["awslogs-region"] == ecs["region"]


@pytest.mark.parametrize("path", TASK_DEFINITIONS, ids=lambda p: p.stem)
def test_task_definitions_run_the_image_by_digest_on_a_read_only_root(path):
    definition = json.loads(path.read_text())
    (container,) = definition["containerDefinitions"]
    # By digest, never a tag: IMAGE_DIGEST stands for the digest `docker push` printed.
    assert re.fullmatch(r"[^:@]+/hospital-readmission-pipeline@sha256:([0-9a-f]{64}|IMAGE_DIGEST)",
                        container["image"]), container["image"]  # fmt: skip
    assert container["readonlyRootFilesystem"] is True
    assert container["user"] == "10001"
    # The writable paths are exactly the image's VOLUMEs, each an ephemeral task volume.
    volumes = json.loads(re.search(r"^VOLUME (\[.*\])$", DOCKERFILE, re.MULTILINE).group(1))
    mounts = {m["containerPath"]: m["sourceVolume"] for m in container["mountPoints"]}
    assert sorted(mounts) == sorted(volumes)
    assert all(not m["readOnly"] for m in container["mountPoints"])
    assert {v["name"] for v in definition["volumes"]} == set(mounts.values())
    assert all(set(v) == {"name"} for v in definition["volumes"])  # task storage, not the host


# Airflow's Secrets Manager backend prefix (README "Alerting"): connection <id> is the secret
# <prefix>/<id>. Which JSON key of the connection secret fills each variable of conf/prod/credentials.yml:
SECRETS_PREFIX = "airflow/connections"
ALERT_SECRET_KEYS = {
    "READMIT_ALERTS_WEBHOOK_URL": ("webhook_conn_id", "host"),  # http connection: host = the URL
    **{
        f"READMIT_ALERTS_SMTP_{key.upper()}": ("smtp_conn_id", key)
        for key in ("host", "port", "login", "password")
    },
}


def test_the_pipeline_task_reads_the_alert_secrets_of_the_airflow_connections():
    """conf/prod/credentials.yml reads environment variables; the pipeline family (which runs
    monitoring) fills each from the Secrets Manager secret Airflow reads as the same connection,
    by JSON key, so both sides use one secret. Never as plain environment; training gets none."""
    credentials = (PROJECT_ROOT / "conf" / "prod" / "credentials.yml").read_text()
    variables = set(re.findall(r"\$\{oc\.env:(\w+)", credentials))
    assert variables == set(ALERT_SECRET_KEYS)
    containers = {
        path.stem: json.loads(path.read_text())["containerDefinitions"][0]
        for path in TASK_DEFINITIONS
    }
    for container in containers.values():
        assert not {e["name"] for e in container["environment"]} & variables
    assert "secrets" not in containers["diab-readmit-demo-model-training"]
    secrets = {
        s["name"]: s["valueFrom"] for s in containers["diab-readmit-demo-pipeline"]["secrets"]
    }
    assert set(secrets) == variables
    default = airflow_yml()["default"]
    for name, value_from in secrets.items():
        conn_key, json_key = ALERT_SECRET_KEYS[name]
        secret = f"{SECRETS_PREFIX}/{default['alerts'][conn_key]}"
        # Full ARN (with the 6-character suffix Secrets Manager adds), JSON key, current version.
        pattern = rf"arn:aws:secretsmanager:{default['ecs']['region']}:\d{{12}}:secret:"
        pattern += rf"{re.escape(secret)}-\w{{6}}:{json_key}::"
        assert re.fullmatch(pattern, value_from), (name, value_from)


def test_both_families_of_the_design_are_defined():
    sizes = {
        json.loads(p.read_text())["family"]: (json.loads(p.read_text())["cpu"], "vCPU")
        for p in AIRFLOW_TASK_DEFINITIONS
    }
    assert sizes == {
        "diab-readmit-demo-pipeline": ("1024", "vCPU"),
        "diab-readmit-demo-model-training": ("2048", "vCPU"),
    }


def _run(argv: list, cwd: Path, env: dict | None = None, timeout: int = 1800) -> str:
    result = subprocess.run(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{argv}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.slow
def test_packaged_project_runs_a_pipeline_from_a_fresh_venv(tmp_path, kedro_pipelines):
    uv = shutil.which("uv") or str(PROJECT_ROOT / ".venv/bin/uv")
    env = dict(os.environ, KEDRO_DISABLE_TELEMETRY="true", DO_NOT_TRACK="1")
    for leaked in ("VIRTUAL_ENV", "PYTHONPATH"):  # bootstrap_project puts this checkout's src/
        env.pop(leaked, None)  # on PYTHONPATH: the fresh venv must see the wheel only

    # Stage `package`: the files the Dockerfile COPYs, kedro + build only, `kedro package`.
    src = tmp_path / "src"
    src.mkdir()
    for name in ("requirements.lock", "pyproject.toml", "README.md", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "local")
    for name in ("src", "conf"):
        shutil.copytree(PROJECT_ROOT / name, src / name, ignore=ignore)
    _run([uv, "venv", "-q", "--python", "python3", tmp_path / "build-venv"], tmp_path, env)
    build_python = tmp_path / "build-venv/bin/python"
    install = [uv, "pip", "install", "-q", "--require-hashes", "--no-deps", "--python"]
    _run([*install, build_python, "-r", PACKAGE_LOCK], src, env)
    _run([uv, "pip", "check", "--python", build_python], src, env)
    _run([tmp_path / "build-venv/bin/kedro", "package"], src, env)
    (wheel,) = (src / "dist").glob("readmit_kedro-*-py3-none-any.whl")
    conf = src / "dist" / "conf-readmit_kedro.tar.gz"

    # Stage `runtime`: the hashed runtime lock, the wheel alone, `pip check`; the /app layout.
    venv = tmp_path / "run-venv"
    _run([uv, "venv", "-q", "--python", "python3", venv], tmp_path, env)
    _run([*install, venv / "bin/python", "-r", RUNTIME_LOCK], tmp_path, env)
    _run(
        [uv, "pip", "install", "-q", "--no-deps", "--python", venv / "bin/python", wheel], src, env
    )
    _run([uv, "pip", "check", "--python", venv / "bin/python"], tmp_path, env)
    app = tmp_path / "app"
    (app / "src").mkdir(parents=True)
    shutil.copy(PROJECT_ROOT / "pyproject.toml", app)
    shutil.copy(PROJECT_ROOT / ".telemetry", app)
    with tarfile.open(conf) as archive:
        assert not [
            m for m in archive.getnames() if m.startswith("conf/local/") and m.endswith("yml")
        ]
        archive.extractall(app, filter="data")
    (app / "conf" / "local").mkdir(exist_ok=True)  # as the Dockerfile's `mkdir -p ... conf/local`
    # The installed wheel's pipelines, found from /app as `kedro run` finds them.
    probe = (
        "from pathlib import Path; from kedro.framework.startup import bootstrap_project; "
        "from kedro.framework.project import pipelines; bootstrap_project(Path.cwd()); "
        "import json, readmit_kedro; print('PIPELINES', readmit_kedro.__file__, json.dumps(list(pipelines)))"
    )
    (line,) = [
        x
        for x in _run([venv / "bin/python", "-c", probe], app, env).splitlines()
        if x.startswith("PIPELINES")
    ]
    assert line.split()[1].startswith(str(venv))  # the wheel, not this checkout
    assert set(kedro_pipelines) <= set(json.loads(line.split(" ", 2)[2]))

    # A real pipeline run from /app, on synthetic data landed by the wheel's own `readmit` CLI.
    if "data_processing" not in kedro_pipelines:
        pytest.skip("data_processing is not registered")
    run_env = dict(env, PYSPARK_PYTHON=str(venv / "bin/python"), SPARK_LOCAL_IP="127.0.0.1")
    synthetic = ["--synthetic-rows", "3000", "--seed", "7"]
    _run([venv / "bin/readmit", "data", "acquire", *synthetic], app, run_env)
    _run([venv / "bin/readmit", "data", "land", "--until", "1999-04"], app, run_env)
    kedro_run = ["run", "--pipelines", "data_processing", "--params", "run_date=1999-04-30"]
    _run([venv / "bin/kedro", *kedro_run], app, run_env)
    signal = json.loads((app / "data/08_reporting/signals/new_data.json").read_text())
    assert signal["run_date"] == "1999-04-30" and signal["new_rows"] > 0
    assert isinstance(signal["train_recommended"], bool)
