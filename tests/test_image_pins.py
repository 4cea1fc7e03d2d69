"""scripts/pin_image_inputs.py: the Dockerfile's base-image digests and jar SHA-256 pins.

No registry or Maven is reachable here, so the resolver is a stand-in command (DIGEST_CMD) and
the Maven repository a file:// folder; the script's own logic (what counts as pinned, what it
writes, when it refuses) is what is tested.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "pin_image_inputs.py"
DIGEST = "sha256:" + "ab" * 32


def run(dockerfile: Path, command: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), command],
        env={**os.environ, "DOCKERFILE": str(dockerfile), **env},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def dockerfile(tmp_path: Path) -> Path:
    copy = tmp_path / "Dockerfile"
    copy.write_text((ROOT / "Dockerfile").read_text())
    return copy


def test_check_names_every_unpinned_input(dockerfile):
    text = dockerfile.read_text()
    for name in ("PYTHON_IMAGE", "DEBIAN_IMAGE"):
        text = re.sub(rf"^ARG {name}=(\S+?)(@\S+)?$", rf"ARG {name}=\1", text, flags=re.M)
    for name in ("HADOOP_AWS_SHA256", "AWS_SDK_BUNDLE_SHA256", "ANALYTICS_ACCELERATOR_SHA256"):
        text = re.sub(rf"^ARG {name}=\S*$", f"ARG {name}=", text, flags=re.M)
    dockerfile.write_text(text)
    result = run(dockerfile, "check")
    assert result.returncode == 1 and "NOT pinned" in result.stdout
    for name in ("PYTHON_IMAGE", "DEBIAN_IMAGE", "HADOOP_AWS_SHA256", "AWS_SDK_BUNDLE_SHA256"):
        assert f"unpinned: {name}" in result.stderr


def test_images_are_pinned_by_digest_and_repinning_replaces_the_digest(dockerfile, tmp_path):
    resolver = tmp_path / "resolver"
    resolver.write_text(f"#!/bin/sh\necho {DIGEST}\n")
    resolver.chmod(0o755)
    assert run(dockerfile, "images", DIGEST_CMD=str(resolver)).returncode == 0
    text = dockerfile.read_text()
    assert f"ARG PYTHON_IMAGE=python:3.11-slim-bookworm@{DIGEST}\n" in text
    assert f"ARG DEBIAN_IMAGE=debian:bookworm-slim@{DIGEST}\n" in text
    resolver.write_text(f"#!/bin/sh\necho sha256:{'cd' * 32}\n")
    assert run(dockerfile, "images", DIGEST_CMD=str(resolver)).returncode == 0
    assert f"ARG PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:{'cd' * 32}\n" in (
        dockerfile.read_text()
    )
    # Fully pinned once the jars have SHA-256s too.
    text = dockerfile.read_text()
    for name in ("HADOOP_AWS_SHA256", "AWS_SDK_BUNDLE_SHA256", "ANALYTICS_ACCELERATOR_SHA256"):
        text = re.sub(rf"^ARG {name}=\S*$", f"ARG {name}={'0' * 64}", text, flags=re.M)
    dockerfile.write_text(text)
    assert run(dockerfile, "check").returncode == 0


def test_a_resolver_that_prints_no_digest_pins_nothing(dockerfile, tmp_path):
    before = dockerfile.read_text()
    result = run(dockerfile, "images", DIGEST_CMD="echo latest")
    assert result.returncode == 1 and "no digest" in result.stderr
    assert dockerfile.read_text() == before


def test_jars_whose_sha1_is_not_maven_centrals_are_refused(dockerfile, tmp_path):
    """A repository serving other bytes (with a .sha1 that matches them) is not trusted."""
    repo = tmp_path / "maven"
    for relative in (
        "org/apache/hadoop/hadoop-aws/3.5.0/hadoop-aws-3.5.0.jar",
        "software/amazon/awssdk/bundle/2.35.4/bundle-2.35.4.jar",
    ):
        jar = repo / relative
        jar.parent.mkdir(parents=True)
        jar.write_bytes(b"not the jar")
        jar.with_name(jar.name + ".sha1").write_text(hashlib.sha1(b"not the jar").hexdigest())
    before = dockerfile.read_text()
    result = run(dockerfile, "jars", MAVEN_REPOSITORY=repo.as_uri())
    assert result.returncode == 1
    assert "hadoop-aws-3.5.0.jar: SHA-1" in result.stderr and "refusing to pin" in result.stderr
    assert dockerfile.read_text() == before
