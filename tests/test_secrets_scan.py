"""No credentials in the repository or in the wheel we ship.

Scans every file git would commit (tracked plus untracked-but-not-ignored, so a secret is caught
before its first commit) and every file of the built wheel for AWS access key ids, secret-key
assignments, passwords and private keys. Documented placeholders are allowed (``ALLOWED_VALUES``);
anything else is a finding. conf/local/credentials.yml itself is git-ignored and never scanned.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

# Value of an assignment that is a placeholder, not a secret.
ALLOWED_VALUES = re.compile(
    r"""^['"]?(
        |null|none|~|""|''|testing|test|dummy|example|changeme|redacted|\*+
        |<[^>]*>                                  # <your-secret-here>
        |\$\{[^}]*\}?                             # ${oc.env:AWS_SECRET_ACCESS_KEY}, ${VAR}
        |\$[A-Z_][A-Z0-9_]*                       # $AWS_SECRET_ACCESS_KEY
        |\$\(.*                                   # $(openssl rand -hex 24): generated
        |os\.environ.*|os\.getenv.*|environ\.get.*|getpass.*
        |str|str\s*\|\s*none|optional\[str\]      # type hints
        |AKIAIOSFODNN7EXAMPLE|wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY   # AWS documentation examples
        |:                                        # ECS secret ARN ...:secret:<name>:password::
    )['",]?$""",
    re.IGNORECASE | re.VERBOSE,
)
ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}\b")
ALLOWED_KEY_IDS = {"AKIAIOSFODNN7EXAMPLE"}  # AWS documentation example
ASSIGNMENT = re.compile(
    r"""(?ix)
    (?P<name>\b(?:aws_)?secret(?:_access)?_key|secret_key|aws_session_token|api[_-]?key
       |client_secret|auth[_-]?token|password|passwd|pwd)
    ['"]?\s*[:=]\s*
    (?P<value>[^\s,;)\]}#]*)
    """
)
PRIVATE_KEY = re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----")
# Files that talk about the patterns themselves.
ALLOWED_FILES = {"tests/test_secrets_scan.py"}
SKIP_SUFFIXES = {".png", ".jpg", ".gif", ".ico", ".parquet", ".pkl", ".gz", ".zip", ".whl", ".jar"}


def findings(name: str, text: str) -> list[str]:
    """``path:line: what`` for every credential-looking line of ``text``."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{name}:{number}"
        for match in ACCESS_KEY_ID.finditer(line):
            if match.group() not in ALLOWED_KEY_IDS:
                found.append(f"{where}: AWS access key id {match.group()[:8]}...")
        for match in ASSIGNMENT.finditer(line):
            value = match.group("value")
            if not ALLOWED_VALUES.match(value):
                found.append(f"{where}: {match.group('name')} = {value[:4]}... ")
        if PRIVATE_KEY.search(line):
            found.append(f"{where}: private key")
    return found


def _repository_files() -> list[str]:
    if shutil.which("git") is None or not (PROJECT_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    listing = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_ROOT, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    return sorted(p for p in listing.split("\0") if p)


def _decoded(data: bytes) -> str | None:
    if b"\0" in data[:8192]:
        return None  # binary
    return data.decode("utf-8", errors="replace")


@pytest.mark.parametrize(
    ("line", "flagged"),
    [
        ("aws_access_key_id = AKIA" + "Q" * 16, True),
        ("aws_secret_access_key: " + "wJalrXUtnFEMIK7MDENGbPxRfiCYzzzzzzzzzzzz", True),
        ('password = "hunter2"', True),
        ("-----BEGIN RSA " + "PRIVATE KEY-----", True),
        ("aws_secret_access_key: ${oc.env:AWS_SECRET_ACCESS_KEY}", False),
        ("password: null", False),
        ("aws_secret_access_key: <your-secret-access-key>", False),
        ('AWS_SECRET_ACCESS_KEY": "testing",', False),
        ("key: AKIAIOSFODNN7EXAMPLE", False),
        (
            '"valueFrom": "arn:aws:secretsmanager:r:1:secret:airflow/connections/c-SUFFIX:password::"',
            False,
        ),  # the JSON key an ECS task reads from a secret, not a value
        ("password::hunter2", True),
    ],
)
def test_patterns(line: str, flagged: bool) -> None:
    assert bool(findings("x", line)) is flagged


def test_repository_has_no_credentials() -> None:
    found = []
    for name in _repository_files():
        path = PROJECT_ROOT / name
        if name in ALLOWED_FILES or path.suffix in SKIP_SUFFIXES or not path.is_file():
            continue
        text = _decoded(path.read_bytes())
        if text is not None:
            found += findings(name, text)
    assert not found, (
        "credential-looking lines (allowlist placeholders in this test):\n" + "\n".join(found)
    )


def test_credentials_template_is_the_only_local_config_in_git() -> None:
    local = [n for n in _repository_files() if n.startswith("conf/local/")]
    assert set(local) <= {"conf/local/.gitkeep", "conf/local/credentials.yml.template"}, local


@pytest.mark.slow
def test_wheel_has_no_credentials(tmp_path: Path) -> None:
    build = None
    for extra in (["--no-build-isolation"], []):  # the venv's setuptools, else an isolated build
        build = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", *extra,
             "-w", str(tmp_path), str(PROJECT_ROOT)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        if build.returncode == 0:
            break
    assert build.returncode == 0, build.stderr
    (wheel,) = tmp_path.glob("*.whl")
    found = []
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert not [n for n in names if n.endswith(("credentials.yml", ".pem", ".key", ".env"))]
        for name in names:
            if Path(name).suffix in SKIP_SUFFIXES:
                continue
            text = _decoded(archive.read(name))
            if text is not None:
                found += findings(f"{wheel.name}!{name}", text)
    assert not found, "\n".join(found)
