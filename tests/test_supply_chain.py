"""Supply chain: every lock is hash-pinned and every install of it verifies the hashes.

A lock without hashes lets a re-uploaded or substituted distribution of the same version in
unnoticed; `--require-hashes` makes pip/uv refuse any file whose sha256 is not in the lock.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCKS = [
    "requirements.lock",
    "airflow/requirements-airflow.txt",
    "deploy/docker/requirements-package.lock",
    "deploy/docker/requirements-runtime.lock",
]


def requirements(lock: Path) -> dict[str, list[str]]:
    """Each pinned requirement of a pip-format lock with the sha256 hashes that follow it."""
    pins: dict[str, list[str]] = {}
    current = None
    for line in lock.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            current = line.split()[0]
            pins[current] = []
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})\b", line)
        assert current is not None or not hashes
        if current is not None:
            pins[current].extend(hashes)
    return pins


@pytest.mark.parametrize("lock", LOCKS)
def test_every_locked_distribution_is_pinned_by_version_and_sha256(lock):
    pins = requirements(ROOT / lock)
    assert len(pins) > 10
    unpinned = [p for p in pins if not re.fullmatch(r"[A-Za-z0-9._-]+(\[[\w,-]+\])?==[\w.+!-]+", p)]
    assert not unpinned, f"{lock}: not pinned to one version: {unpinned}"
    unhashed = [p for p, hashes in pins.items() if not hashes]
    assert not unhashed, f"{lock}: no --hash for {unhashed} (run `make lock` / `make airflow-lock`)"


def test_the_lock_parser_sees_a_missing_hash(tmp_path):
    lock = tmp_path / "r.txt"
    lock.write_text("a==1 \\\n    --hash=sha256:" + "0" * 64 + "\nb==2\n    # via a\n")
    assert requirements(lock) == {"a==1": ["0" * 64], "b==2": []}


def test_image_locks_have_the_versions_of_requirements_lock():
    main = requirements(ROOT / "requirements.lock")
    for lock in (
        "deploy/docker/requirements-package.lock",
        "deploy/docker/requirements-runtime.lock",
    ):
        differ = sorted(set(requirements(ROOT / lock)) - set(main))
        assert not differ, f"{lock} pins versions requirements.lock does not: {differ}"


def test_every_install_of_a_lock_requires_hashes():
    makefile = (ROOT / "Makefile").read_text()
    setup = makefile[makefile.index("$(VENV)/.installed:") : makefile.index("\nsetup:")]
    assert re.search(r"--require-hashes --no-deps \\\n\s+-r requirements\.lock", setup)
    for recipe in ("lock:", "image-locks:", "airflow-lock:"):
        body = makefile[makefile.index(f"\n{recipe}") :].split("\n\n", 1)[0]
        assert body.count("--generate-hashes") == body.count("pip compile") >= 1, recipe
    airflow = (ROOT / "scripts/make_airflow_venv.sh").read_text()
    assert re.search(
        r"--require-hashes --no-deps \\\n\s+-r airflow/requirements-airflow\.txt", airflow
    )
