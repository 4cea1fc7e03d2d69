"""The IAM side of prod: every policy under deploy/ linted, the KMS key agreed, least privilege.

parliament (duo-labs) checks each policy document against AWS's catalogue of actions, resources
and condition keys: unknown or misspelt actions, condition keys an action does not have, values of
the wrong type, Resource "*" where the action supports resource ARNs, privilege-escalation
patterns. Findings are failures, except the few listed in ``ACCEPTED`` with the reason.

The other tests read the documents themselves: the SSE-KMS key of ``conf/prod/globals.yml`` must be
the one the bucket policy admits and the task roles may use; the bucket policy's PutObject denies
are evaluated (documented IAM condition semantics) on the requests a client can make; and each
role holds what its tasks need and nothing more (deploy/SECURITY.md, "Least privilege per role").
"""

from __future__ import annotations

import fnmatch
import json
import re
import warnings
from pathlib import Path

import pytest
import yaml

with warnings.catch_warnings():  # parliament 1.6.4 imports pkg_resources (deprecated)
    warnings.simplefilter("ignore", UserWarning)
    warnings.simplefilter("ignore", DeprecationWarning)  # its regexes: invalid escapes
    import parliament

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
IAM = DEPLOY / "iam"
BUCKET_POLICY = DEPLOY / "s3" / "bucket-policy.json"
GLOBALS = yaml.safe_load((ROOT / "conf/prod/globals.yml").read_text())
AIRFLOW_PROD = yaml.safe_load((ROOT / "conf/prod/airflow.yml").read_text())["default"]
PREFIX = GLOBALS["bucket_prefix"]
KEY_ARN = re.compile(r"arn:aws:kms:[a-z0-9-]+:\d{12}:key/[0-9a-f-]{36}")

# (file relative to deploy/, parliament issue, text in its detail) -> why it is accepted.
ACCEPTED = {
    ("s3/bucket-policy.json", "MISMATCHED_TYPE", "s3:TlsVersion"): (
        "parliament 1.6.4 checks Numeric values against ^\\d+$, so the 1.2 of AWS's own "
        "TLS-version example is flagged; 1.2 is the value S3 compares"
    ),
    ("s3/bucket-policy.json", "UNKNOWN_CONDITION_FOR_ACTION", "s3:TlsVersion"): (
        "DenyTLSOlderThan12 is on s3:*: two of the actions it expands to list no s3:TlsVersion "
        "in the catalogue; the Deny still holds for every other action"
    ),
}


def policy_documents() -> list[Path]:
    """Every JSON file under deploy/ that is an IAM policy document (ECS task definitions are not)."""
    return sorted(
        path for path in DEPLOY.rglob("*.json") if "Statement" in json.loads(path.read_text())
    )


def lint(text: str, path: str | None = None) -> list:
    return parliament.analyze_policy_string(text, filepath=path).findings


def statements(path: Path) -> list[dict]:
    return json.loads(path.read_text())["Statement"]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def allowed(path: Path) -> list[tuple[str, str, dict]]:
    """(action, resource, condition) of every Allow of a role policy."""
    return [
        (action, resource, s.get("Condition", {}))
        for s in statements(path)
        if s["Effect"] == "Allow"
        for action in as_list(s["Action"])
        for resource in as_list(s["Resource"])
    ]


def bucket(name: str) -> str:
    return f"arn:aws:s3:::{PREFIX}-{name}"


def test_the_policy_documents_are_found():
    names = {str(p.relative_to(DEPLOY)) for p in policy_documents()}
    assert names == {
        "s3/bucket-policy.json",
        "iam/diab-readmit-airflow.json",
        "iam/diab-readmit-demo-ecs-execution.json",
        "iam/diab-readmit-demo-model-training-task.json",
        "iam/diab-readmit-demo-pipeline-task.json",
        "iam/diab-readmit-demo-serve-task.json",
    }


@pytest.mark.parametrize("path", policy_documents(), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_parliament_finds_nothing_unaccepted(path):
    relative = str(path.relative_to(DEPLOY))
    unaccepted = {
        (finding.issue, str(finding.detail)[:200])
        for finding in lint(path.read_text(), str(path))
        if not any(
            (relative, finding.issue) == (file, issue) and text in str(finding.detail)
            for file, issue, text in ACCEPTED
        )
    }
    assert not unaccepted, f"{relative}: {sorted(unaccepted)}"


def test_parliament_does_flag_a_bad_policy():
    """The linter is live: a misspelt action and a wildcard resource are reported."""
    bad = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": bucket("monitoring") + "/*"},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"},
        ],
    }
    issues = {finding.issue for finding in lint(json.dumps(bad))}
    assert {"UNKNOWN_ACTION", "RESOURCE_STAR"} <= issues


# --- KMS: configuration and policies name the same key ---------------------------------------


def test_prod_sends_the_key_arn_the_bucket_policy_admits():
    configured = GLOBALS["s3"]["sse_kms_key_id"]
    assert KEY_ARN.fullmatch(configured), (
        f"conf/prod/globals.yml s3.sse_kms_key_id must be the key ARN, got {configured!r}"
    )
    admitted = {
        value
        for s in statements(BUCKET_POLICY)
        for operator, keys in s.get("Condition", {}).items()
        for key, value in keys.items()
        if key == "s3:x-amz-server-side-encryption-aws-kms-key-id" and operator != "Null"
    }
    assert admitted == {configured}


@pytest.mark.parametrize(
    "path", [*sorted(IAM.glob("*-task.json")), IAM / "diab-readmit-airflow.json"]
)
def test_roles_use_s3_data_keys_of_the_configured_key_only_through_s3(path):
    uses = [(a, r, c) for a, r, c in allowed(path) if a in ("kms:Decrypt", "kms:GenerateDataKey")]
    assert uses
    for _action, resource, condition in uses:
        assert resource == GLOBALS["s3"]["sse_kms_key_id"]
        region = GLOBALS["s3"]["region"]
        assert condition["StringEquals"]["kms:ViaService"] == f"s3.{region}.amazonaws.com"


# --- The bucket policy, evaluated on PutObject requests -------------------------------------


def condition_holds(operator: str, key: str, expected, request: dict) -> bool:
    """One condition of a statement, with IAM's documented semantics for an absent key: false
    for positive operators, true for negated ones and for ...IfExists, Null tests presence."""
    values = [str(v) for v in as_list(expected)]
    present = key in request
    if operator == "Null":
        return (not present) == (values == ["true"])
    if_exists = operator.endswith("IfExists")
    base = operator.removesuffix("IfExists")
    if not present:
        return if_exists or "Not" in base
    actual = str(request[key])
    if base in ("StringEquals", "ArnEquals", "Bool"):
        return actual in values
    if base in ("StringNotEquals", "ArnNotEquals"):
        return actual not in values
    if base in ("StringLike", "ArnLike"):
        return any(fnmatch.fnmatchcase(actual, v) for v in values)
    if base in ("StringNotLike", "ArnNotLike"):
        return not any(fnmatch.fnmatchcase(actual, v) for v in values)
    if base == "NumericLessThan":
        return float(actual) < float(values[0])
    raise AssertionError(f"operator {operator} is not modelled by this test")


def denied_by(policy: list[dict], action: str, request: dict) -> list[str]:
    return [
        s["Sid"]
        for s in policy
        if s["Effect"] == "Deny"
        and any(fnmatch.fnmatchcase(action, a) for a in as_list(s["Action"]))
        and all(
            condition_holds(operator, key, value, request)
            for operator, keys in s.get("Condition", {}).items()
            for key, value in keys.items()
        )
    ]


TRAINING_ROLE = "arn:aws:iam::123456789012:role/diab-readmit-demo-model-training-task"
TLS = {"aws:SecureTransport": "true", "s3:TlsVersion": "1.3", "aws:PrincipalArn": TRAINING_ROLE}
SSE = "s3:x-amz-server-side-encryption"
SSE_KEY = "s3:x-amz-server-side-encryption-aws-kms-key-id"
OTHER_KEY = "arn:aws:kms:ap-southeast-1:123456789012:key/99999999-9999-9999-9999-999999999999"


@pytest.mark.parametrize(
    ("headers", "allowed_put"),
    [
        ({SSE: "aws:kms", SSE_KEY: GLOBALS["s3"]["sse_kms_key_id"]}, True),  # what prod sends
        ({SSE: "aws:kms", SSE_KEY: "alias/diab-readmit-123456-s3"}, False),  # an alias
        ({SSE: "aws:kms", SSE_KEY: OTHER_KEY}, False),
        ({SSE: "aws:kms"}, False),  # aws:kms without a key id: S3 would use aws/s3
        ({SSE: "AES256"}, False),
        ({}, False),
    ],
    ids=["configured-key", "alias", "other-key", "no-key-id", "sse-s3", "no-sse"],
)
def test_bucket_policy_admits_only_puts_with_the_configured_key(headers, allowed_put):
    denied = denied_by(statements(BUCKET_POLICY), "s3:PutObject", {**TLS, **headers})
    assert (not denied) == allowed_put, denied


def test_the_evaluator_reads_the_conditions_it_is_given():
    """Guards the model above: a policy keyed on an alias denies prod's ARN, and a plain Allow of
    the wrong principal is denied by the registry statement."""
    policy = statements(BUCKET_POLICY)
    prod = {**TLS, SSE: "aws:kms", SSE_KEY: GLOBALS["s3"]["sse_kms_key_id"]}
    aliased = json.loads(
        json.dumps(policy).replace(GLOBALS["s3"]["sse_kms_key_id"], "alias/diab-readmit-123456-s3")
    )
    assert denied_by(aliased, "s3:PutObject", prod) == ["DenyPutWithOtherKMSKey"]
    intruder = {**prod, "aws:PrincipalArn": "arn:aws:iam::123456789012:role/other"}
    assert denied_by(policy, "s3:PutObject", intruder) == ["RegistryWritableOnlyByTrainingAndAdmin"]
    assert denied_by(policy, "s3:GetObject", {**TLS, "s3:TlsVersion": "1.1"}) == [
        "DenyTLSOlderThan12"
    ]


# --- Least privilege per role ----------------------------------------------------------------


def s3_keys(location: str) -> str:
    assert location.startswith("s3://"), location
    return "arn:aws:s3:::" + location.removeprefix("s3://")


def test_airflow_role_holds_exactly_what_its_gates_and_operators_need():
    grants = allowed(IAM / "diab-readmit-airflow.json")
    actions = {a for a, _r, _c in grants}
    assert actions == {
        "ecs:RunTask",
        "ecs:DescribeTasks",
        "ecs:StopTask",
        "ecs:ListTasks",
        "iam:PassRole",
        "logs:GetLogEvents",
        "s3:GetObject",
        "s3:ListBucket",
        "kms:Decrypt",
        "secretsmanager:GetSecretValue",  # the alert connections (test below)
    }
    # Reads: the signals and the registry pointers/indexes of conf/prod/airflow.yml, nothing else.
    readable = [r for a, r, _c in grants if a == "s3:GetObject"]
    for location in AIRFLOW_PROD["signals"].values():
        assert any(fnmatch.fnmatchcase(s3_keys(location), r) for r in readable), location
    registry = s3_keys(AIRFLOW_PROD["registry"])
    for key in ("xgboost/latest", "xgboost/versions.json"):
        assert any(fnmatch.fnmatchcase(f"{registry}/{key}", r) for r in readable), key
    for key in ("xgboost/20260101T000000Z/model.pkl", "metadata/latest.json"):
        assert not any(fnmatch.fnmatchcase(f"{registry}/{key}", r) for r in readable), key
    for dataset in ("datamart/silver/x.parquet", "predictions/predictions_2026-01-01.parquet"):
        bucket_name, key = dataset.split("/", 1)
        assert not any(fnmatch.fnmatchcase(f"{bucket(bucket_name)}/{key}", r) for r in readable)
    # SSE-KMS: Decrypt only, of the S3 key, only via S3, only for the two buckets it reads.
    (decrypt,) = [c for a, _r, c in grants if a == "kms:Decrypt"]
    contexts = decrypt["StringLike"]["kms:EncryptionContext:aws:s3:arn"]
    assert {c.split("/")[0] for c in contexts} == {bucket("monitoring"), registry}
    # ECS: only the two families, only on the project cluster; roles passed to ECS tasks only.
    run = [r for a, r, _c in grants if a == "ecs:RunTask"]
    families = {f["task_definition"] for f in _ecs_families()}
    assert {r.split("task-definition/")[1].removesuffix(":*") for r in run} == families
    for action, _resource, condition in grants:
        if action == "iam:PassRole":
            assert condition["StringEquals"]["iam:PassedToService"] == "ecs-tasks.amazonaws.com"


SERVE_FAMILY = "diab-readmit-demo-serve"  # the scoring service: its API key, not an alert secret


def task_secrets(*, service: bool) -> set[str]:
    """The secret ARNs (without JSON key and version) the ECS task definitions read: the
    scoring service's (``service``) or the Airflow families' (the alert secrets)."""
    return {
        re.sub(r"(:secret:[^:]+):.*", r"\1", secret["valueFrom"])  # drop :json-key:stage:version
        for path in sorted((DEPLOY / "ecs").glob("*.json"))
        if (path.stem == SERVE_FAMILY) == service
        for container in json.loads(path.read_text())["containerDefinitions"]
        for secret in container.get("secrets", [])
    }


def test_only_the_ecs_agent_and_airflow_read_the_alert_secrets_and_only_those():
    """The execution role fetches the tasks' `secrets` (ECS injects them at start); the Airflow
    role reads the alert secrets as connections through the Secrets Manager backend. Each may
    read exactly those secrets (the execution role also the service's API key, which Airflow
    never sees); the task roles read none (the container gets values only)."""
    alerts, service = task_secrets(service=False), task_secrets(service=True)
    suffix = re.compile(r"-\w{6}$")
    assert {suffix.sub("", arn).rsplit("/", 1)[1] for arn in alerts} == {
        "readmit_alerts_webhook",
        "readmit_alerts_smtp",
    }
    assert {suffix.sub("", arn).split(":secret:")[1] for arn in service} == {
        "readmit/serve_api_key"
    }
    for role, secrets in (
        ("diab-readmit-demo-ecs-execution", alerts | service),
        ("diab-readmit-airflow", alerts),
    ):
        readable = [
            r for a, r, _c in allowed(IAM / f"{role}.json") if a.startswith("secretsmanager")
        ]
        assert {a for a, _r, _c in allowed(IAM / f"{role}.json") if a.startswith("secrets")} == {
            "secretsmanager:GetSecretValue"
        }
        for arn in secrets:  # the ARN's 6-character suffix is matched by the policy's -??????
            assert any(fnmatch.fnmatchcase(arn, r) for r in readable), (role, arn)
        for resource in readable:
            assert resource.endswith("-??????"), resource  # not a prefix of other secrets' names
            assert any(fnmatch.fnmatchcase(arn, resource) for arn in secrets), (role, resource)
        other = next(iter(secrets)).split(":secret:")[0] + ":secret:airflow/connections/aws_default"
        assert not any(fnmatch.fnmatchcase(other + "-AbCdEf", r) for r in readable)
    for path in IAM.glob("*-task.json"):
        assert not any(a.startswith("secretsmanager") for a, _r, _c in allowed(path)), path.name


def _ecs_families() -> list[dict]:
    base = yaml.safe_load((ROOT / "conf/base/airflow.yml").read_text())["default"]
    return list(base["ecs"]["families"].values())


def test_only_the_training_role_writes_the_registry_or_signs():
    training = allowed(IAM / "diab-readmit-demo-model-training-task.json")
    pipeline = allowed(IAM / "diab-readmit-demo-pipeline-task.json")
    registry_object = bucket("model-registry") + "/xgboost/v1/model.pkl"

    def may(grants, action, resource):
        return any(a == action and fnmatch.fnmatchcase(resource, r) for a, r, _c in grants)

    assert may(training, "s3:PutObject", registry_object)
    for write in ("s3:PutObject", "s3:DeleteObject"):
        assert not may(pipeline, write, registry_object)
    assert may(pipeline, "s3:GetObject", registry_object)
    assert {a for a, _r, _c in training if a.startswith("kms:") and a != "kms:Decrypt"} >= {
        "kms:Sign"
    }
    assert "kms:Sign" not in {a for a, _r, _c in pipeline}
    assert "kms:Verify" in {a for a, _r, _c in pipeline}
    # The training task never reads predictions.
    assert not may(training, "s3:GetObject", bucket("predictions") + "/predictions_x.parquet")


@pytest.mark.parametrize("path", sorted(IAM.glob("*.json")), ids=lambda p: p.stem)
def test_no_role_allows_a_wildcard_action_or_a_wildcard_resource(path):
    for action, resource, _condition in allowed(path):
        assert "*" not in action, f"{path.name}: {action}"
        # ecr:GetAuthorizationToken has no resource type: "*" is the only valid resource.
        assert resource != "*" or action == "ecr:GetAuthorizationToken", f"{path.name}: {action}"
