"""``readmit registry …``: inspect the model registry and move the champion by hand.

The root defaults to the local registry (``data/06_models/registry``, as in conf/base/globals.yml)
and takes any fsspec URL, e.g. ``--root s3://bucket/model_registry`` (AWS credentials come from the
usual chain: env vars, profile, ECS task role). ``READMIT_REGISTRY_ROOT`` sets it for a shell.
"""

from __future__ import annotations

import json

import click

from readmit_kedro.io.atomic import UnsafeNameError
from readmit_kedro.io.registry import ModelIntegrityError, ModelRegistry, RegistryError
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


@click.group(name="registry")
def registry() -> None:
    """Model registry: list versions, promote a version to champion, roll back."""


@registry.command(name="list")
@root_option
@click.option("--algorithm", help="Only this algorithm (default: all).")
def list_versions(root: str, algorithm: str | None) -> None:
    """Registered versions (oldest first) with test/OOT ROC AUC; the champion is starred."""
    reg = ModelRegistry(root)
    champion = reg.champion() or {}
    algorithms = [algorithm] if algorithm else reg.algorithms()
    try:
        versions = {name: reg.list_versions(name) for name in algorithms}
    except UnsafeNameError as exc:
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
@click.argument("algorithm")
@click.argument("version")
@click.option("--reason", default="manual promotion", show_default=True)
def promote(root: str, algorithm: str, version: str, reason: str) -> None:
    """Make ALGORITHM VERSION the champion (its bundle is hash-checked first)."""
    _run(lambda: ModelRegistry(root).promote(algorithm, version, reason))


@registry.command()
@root_option
@click.option("--reason", default="manual rollback", show_default=True)
def rollback(root: str, reason: str) -> None:
    """Restore the champion that the current one replaced."""
    _run(lambda: ModelRegistry(root).rollback(reason))


def _run(change) -> None:
    try:
        entry = change()
    except (RegistryError, ModelIntegrityError, UnsafeNameError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(entry, indent=2, sort_keys=True))


def _auc(metrics: dict, window: str) -> str:
    value = describe_metric(metrics.get(window, {}), "roc_auc")
    return "" if value == "n/a" else value
