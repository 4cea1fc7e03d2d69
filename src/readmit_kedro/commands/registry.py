"""``readmit registry …``: inspect the model registry and move the champion by hand.

The root defaults to the local registry (``data/06_models/registry``, as in conf/base/globals.yml)
and takes any fsspec URL, e.g. ``--root s3://bucket/model_registry`` (AWS credentials come from the
usual chain: env vars, profile, ECS task role). ``READMIT_REGISTRY_ROOT`` sets it for a shell.

Records are verified (and champion changes signed) with the key of conf's ``model_signing``: the
local Ed25519 key file by default, or ``--kms-key-id`` / ``READMIT_SIGNING_KMS_KEY_ID`` (the key ARN
of conf/prod/globals.yml) against a prod registry.
"""

from __future__ import annotations

import json

import click

from readmit_kedro.io.atomic import ConcurrentUpdateError, UnsafeNameError
from readmit_kedro.io.registry import ModelIntegrityError, ModelRegistry, RegistryError
from readmit_kedro.io.signing import DEFAULT_KEY_FILE, AwsKmsKey, Ed25519KeyFile, SigningKey
from readmit_kedro.model.metrics import describe_metric

DEFAULT_ROOT = "data/06_models/registry"
AUC_WIDTH = 24  # "  0.668 [0.656, 0.679]": a value and its interval, right-aligned

root_option = click.option(
    "--root",
    default=DEFAULT_ROOT,
    envvar="READMIT_REGISTRY_ROOT",
    show_default=True,
    help="Registry root: a local path or an fsspec URL such as s3://bucket/prefix.",
)

_key_file_option = click.option(
    "--signing-key",
    "key_file",
    default=DEFAULT_KEY_FILE,
    envvar="READMIT_SIGNING_KEY_FILE",
    show_default=True,
    help="Ed25519 key file that signs/verifies records (conf model_signing.filepath).",
)
_kms_option = click.option(
    "--kms-key-id",
    envvar="READMIT_SIGNING_KMS_KEY_ID",
    help="KMS key ARN that signs/verifies records instead (conf/prod model_signing.key_id).",
)


def signing_options(command):
    """``--signing-key`` / ``--kms-key-id``: which key vouches for the registry's records."""
    return _key_file_option(_kms_option(command))


def _registry(root: str, key_file: str, kms_key_id: str | None) -> ModelRegistry:
    key: SigningKey = AwsKmsKey(kms_key_id) if kms_key_id else Ed25519KeyFile(key_file)
    return ModelRegistry(root, signing=key)


@click.group(name="registry")
def registry() -> None:
    """Model registry: list versions, promote a version to champion, roll back."""


@registry.command(name="list")
@root_option
@signing_options
@click.option("--algorithm", help="Only this algorithm (default: all).")
def list_versions(root: str, key_file: str, kms_key_id: str | None, algorithm: str | None) -> None:
    """Registered versions (oldest first) with test/OOT ROC AUC; the champion is starred."""
    reg = _registry(root, key_file, kms_key_id)
    try:
        champion = reg.champion() or {}
        algorithms = [algorithm] if algorithm else reg.algorithms()
        versions = {name: reg.list_versions(name) for name in algorithms}
    except (UnsafeNameError, ModelIntegrityError) as exc:
        raise click.ClickException(str(exc)) from exc
    if not any(versions.values()):
        click.echo(f"no registered models in {root}")
        return
    header = f"{'test_auc [95% CI]':>{AUC_WIDTH}}{'oot_auc [95% CI]':>{AUC_WIDTH}}"
    click.echo(f"{'':2}{'algorithm':<22}{'version':<26}{header}  run_date")
    for name, records in versions.items():
        for record in records:
            star = "*" if (name, record["version"]) == (
                champion.get("algorithm"), champion.get("version")
            ) else " "  # fmt: skip
            metrics = record.get("metrics", {})
            click.echo(
                f"{star:2}{name:<22}{record['version']:<26}"
                f"{_auc(metrics, 'test'):>{AUC_WIDTH}}{_auc(metrics, 'oot'):>{AUC_WIDTH}}"
                f"  {record.get('run_date', '')}"
            )
    if champion:
        click.echo(f"\n* champion since {champion['promoted_at']}: {champion['reason']}")


@registry.command()
@root_option
@signing_options
@click.argument("algorithm")
@click.argument("version")
@click.option("--reason", default="manual promotion", show_default=True)
def promote(
    root: str, key_file: str, kms_key_id: str | None, algorithm: str, version: str, reason: str
) -> None:
    """Make ALGORITHM VERSION the champion (its signed record and bundle are checked first)."""
    _run(lambda: _registry(root, key_file, kms_key_id).promote(algorithm, version, reason))


@registry.command()
@root_option
@signing_options
@click.option("--reason", default="manual rollback", show_default=True)
def rollback(root: str, key_file: str, kms_key_id: str | None, reason: str) -> None:
    """Restore the champion that the current one replaced."""
    _run(lambda: _registry(root, key_file, kms_key_id).rollback(reason))


def _run(change) -> None:
    try:
        entry = change()
    except (RegistryError, ModelIntegrityError, UnsafeNameError, ConcurrentUpdateError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(entry, indent=2, sort_keys=True))


def _auc(metrics: dict, window: str) -> str:
    value = describe_metric(metrics.get(window, {}), "roc_auc")
    return "" if value == "n/a" else value
