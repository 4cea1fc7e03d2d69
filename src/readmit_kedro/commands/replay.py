"""The whole lifecycle on a laptop: the design's "First Run Sequence", then a year of operation.

History up to ``history_until`` is landed, processed and used for the first training; then month
by month the new extract is landed and processed, new encounters are scored, and monitoring runs
at each month end. Labels mature 30 days after admission, so monitoring sees the performance of a
month one month later. When monitoring recommends retraining, training runs before the next
month, and the next inference uses whatever champion the registry then names. This is what the
four Airflow DAGs do on their schedules; running the pipelines in one process keeps Spark warm.

Every replay starts from an empty state (all but the raw download), so running it again tells the
same year: over an earlier replay's registry its first training would meet a champion trained on
later data, and its months would be scored by it.
"""

from __future__ import annotations

import calendar
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from readmit_kedro.hooks import get_or_create_spark
from readmit_kedro.landing import DEFAULT_LANDING_ROOT, DEFAULT_RAW_DIR
from readmit_kedro.landing.acquire import acquire
from readmit_kedro.landing.inject_drift import drift_extract
from readmit_kedro.landing.monthly import extract_name, land
from readmit_kedro.model.metrics import describe_metric
from readmit_kedro.pipelines.training.checks import InsufficientDataError

logger = logging.getLogger(__name__)

# Training in the replay uses windows relative to its run date (the design's absolute 2008 OOT
# window does not exist yet at the end of 2007), and so does every retraining after it. At the end
# of 2007 gold holds 9 admission years, one fewer than the design's 10-partition check.
RELATIVE_WINDOWS = {
    "temporal_splits": {"mode": "relative"},
    "training_config": {"data_requirements": {"min_partitions": 9}},
}
# conf/base/spark.yml stops the JIT at C1, right for one data_processing run per JVM (an Airflow
# task). The replay's one JVM serves 13 runs, which the optimising tier pays back (README,
# "Measured figures").
QUICK_JIT_ONLY = "-XX:TieredStopAtLevel="
# The globals naming where the pipelines keep their state; the replay empties each one first.
STATE_ROOTS = ("data_root", "landing_root", "registry_root", "predictions_root", "reports_root")


class ReplayStateError(RuntimeError):
    """The replay would have to clear state that is not a local folder of the project."""


@dataclass
class ReplaySummary:
    """What happened, month by month: runs, their wall time, alerts and retrainings."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    retrained_on: list[str] = field(default_factory=list)
    retraining_declined: dict[str, str] = field(default_factory=dict)  # run_date -> reason

    def add(self, **step: Any) -> None:
        self.steps.append(step)


def month_end(month: str) -> str:
    year, number = (int(part) for part in month.split("-"))
    return f"{month}-{calendar.monthrange(year, number)[1]:02d}"


def months_between(first: str, last: str) -> Iterator[str]:
    year, number = (int(part) for part in first.split("-"))
    while f"{year:04d}-{number:02d}" <= last:
        yield f"{year:04d}-{number:02d}"
        year, number = (year + 1, 1) if number == 12 else (year, number + 1)


def replay(
    project_path: Path,
    *,
    env: str | None = None,
    source: str | None = None,
    synthetic_rows: int | None = None,
    history_until: str = "2007-12",
    last_month: str = "2008-12",
    drift_from: str | None = None,
    on_step: Callable[[int, int, str], None] = lambda done, planned, description: None,
) -> ReplaySummary:
    """Run the system through its first year; returns the summary that the CLI prints.

    ``on_step(done, planned, description)`` is called as each pipeline run starts (the CLI's
    progress bar).
    """
    bootstrap_project(project_path)
    with KedroSession.create(project_path=project_path, env=env) as session:
        config = session.load_context().config_loader
        cleared = clear_state(project_path, config["globals"], keep=DEFAULT_RAW_DIR)
        get_or_create_spark(_with_full_jit(config["spark"]))
    if cleared:
        logger.info(
            "Starting from an empty state: removed %d entries an earlier run left under %s "
            "(kept %s)", len(cleared),
            ", ".join(str(config["globals"][key]) for key in STATE_ROOTS), DEFAULT_RAW_DIR,
        )  # fmt: skip
    raw = acquire(project_path / DEFAULT_RAW_DIR, source, synthetic_rows=synthetic_rows)
    landing_root = project_path / DEFAULT_LANDING_ROOT
    summary = ReplaySummary()
    months = list(months_between(_next_month(history_until), last_month))
    progress = {"done": 0, "planned": 3 + 3 * len(months)}  # retrainings add to the plan

    def run(pipeline: str, run_date: str, **params: Any) -> dict[str, Any]:
        progress["done"] += 1
        on_step(progress["done"], progress["planned"], f"{pipeline} {run_date}")
        logger.info(
            "[%d/%d] %s for run_date %s", progress["done"], progress["planned"], pipeline, run_date
        )
        started = time.perf_counter()
        with KedroSession.create(
            project_path=project_path, env=env, runtime_params={"run_date": run_date, **params}
        ) as session:
            session.run(pipeline_names=[pipeline])
            catalog = session.load_context().catalog
        seconds = round(time.perf_counter() - started, 1)
        summary.add(pipeline=pipeline, run_date=run_date, seconds=seconds)
        return {"catalog": catalog, "seconds": seconds}

    def land_month(month: str) -> None:
        result = land(raw.path, landing_root, until=month)
        if drift_from and month >= drift_from:
            for written in result.written:
                if written >= drift_from:
                    drift_extract(landing_root / extract_name(written))
                    logger.info("Injected drift into the %s extract", written)

    land_month(history_until)
    first_date = month_end(history_until)
    run("data_processing", first_date)
    run("training", first_date, **RELATIVE_WINDOWS)
    run("inference", first_date)
    for month in months:
        run_date = month_end(month)
        land_month(month)
        run("data_processing", run_date)
        run("inference", run_date)
        monitored = run("monitoring", run_date)
        signal = monitored["catalog"].load("retrain_signal")
        summary.steps[-1]["retrain_recommended"] = bool(signal.get("retrain_recommended"))
        summary.steps[-1]["reasons"] = signal.get("reasons", [])
        if signal.get("retrain_recommended") and month != last_month:
            progress["planned"] += 1
            try:
                run("training", run_date, **RELATIVE_WINDOWS)
            except InsufficientDataError as declined:
                # As on Airflow: the prerequisite task fails with its reason, the champion stays.
                logger.warning("Retraining for %s declined, champion kept: %s", run_date, declined)
                summary.retraining_declined[run_date] = str(declined).replace("\n", " ")
            else:
                summary.retrained_on.append(run_date)
    return summary


def clear_state(project_path: Path, roots: dict[str, Any], *, keep: Path) -> list[Path]:
    """Empty every folder in ``STATE_ROOTS`` of ``roots`` (the globals); returns what it removed.

    ``keep`` (relative to the project) and the layer folders' ``.gitkeep`` files stay. Only local
    folders inside the project are cleared: a root on S3 or elsewhere is refused untouched.
    """
    project = Path(os.path.abspath(project_path))
    folders = []
    for key in STATE_ROOTS:
        value = str(roots[key])
        folder = Path(os.path.normpath(project / value))
        if "://" in value or folder == project or not folder.is_relative_to(project):
            raise ReplayStateError(
                f"the replay starts from an empty state, and globals {key} is {value!r}, not a "
                "folder inside the project: it clears only local folders (run it on the embedded "
                "default, conf/base, or dev)"
            )
        folders.append(folder)
    kept = project / keep
    return [entry for folder in folders if folder.is_dir() for entry in _clear(folder, kept)]


def _clear(folder: Path, keep: Path) -> list[Path]:
    removed = []
    for entry in sorted(folder.iterdir()):
        if entry.name == ".gitkeep" or entry == keep:
            continue
        if keep.is_relative_to(entry) or (entry / ".gitkeep").is_file():
            removed += _clear(entry, keep)  # a folder holding what stays: clear inside it
        else:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


def _with_full_jit(spark_conf: dict[str, Any]) -> dict[str, Any]:
    key = "spark.driver.extraJavaOptions"
    options = str(spark_conf.get(key, "")).split()
    return {**spark_conf, key: " ".join(o for o in options if not o.startswith(QUICK_JIT_ONLY))}


def _next_month(month: str) -> str:
    months = months_between(month, "9999-12")
    next(months)
    return next(months)


def describe(summary: ReplaySummary, project_path: Path, env: str | None = None) -> str:
    """A short, human summary: models and AUCs, champion history, predictions, alerts."""
    import pandas as pd

    from readmit_kedro.io.registry import ModelRegistry

    bootstrap_project(project_path)
    with KedroSession.create(project_path=project_path, env=env) as session:
        context = session.load_context()
    registry_root = context.config_loader["globals"]["registry_root"]
    registry = ModelRegistry(str(project_path / registry_root))
    lines = ["Models (ROC AUC on test / OOT, patient-clustered bootstrap 95% interval):"]
    for algorithm in registry.algorithms():
        for record in registry.list_versions(algorithm):
            metrics = record.get("metrics", {})
            test_auc = _metric(metrics, "test", "roc_auc")
            oot_auc = _metric(metrics, "oot", "roc_auc")
            lines.append(f"  {algorithm:20s} {record['version']}  {test_auc:<20} / {oot_auc}")
    lines.append("Champion history:")
    for change in registry.history():
        lines.append(
            f"  {change.get('promoted_at', '?')[:19]}  {change['algorithm']} {change['version']}"
            f"  ({change.get('reason', '')})"
        )
    store = context.catalog.load("prediction_store")
    per_month = store.groupby(pd.to_datetime(store["admission_date"]).dt.strftime("%Y-%m")).size()
    lines.append("Predictions per admission month (2008):")
    lines.append("  " + ", ".join(f"{m}: {n}" for m, n in per_month.items() if m >= "2008"))
    lines.extend(_ordering_warnings(context.catalog))
    lines.append("Monitoring (month end: retrain recommended? reasons):")
    for step in summary.steps:
        if step["pipeline"] == "monitoring":
            reasons = "; ".join(step.get("reasons", [])) or "-"
            lines.append(f"  {step['run_date']}: {step.get('retrain_recommended')}  {reasons}")
    lines.append(f"Retrained on: {', '.join(summary.retrained_on) or 'never'}")
    for run_date, reason in summary.retraining_declined.items():
        lines.append(f"Retraining declined on {run_date}: {reason}")
    total = sum(step["seconds"] for step in summary.steps)
    lines.append(f"Pipeline runs: {len(summary.steps)}, {total:.0f} s in pipelines")
    return "\n".join(lines)


def _ordering_warnings(catalog: Any) -> list[str]:
    """The ordering warnings of the last data_processing run's quality report."""
    if not catalog.exists("data_quality_report"):
        return ["Data quality (last data_processing run): no report"]
    report = catalog.load("data_quality_report")
    warnings = report.get("ordering_warnings", [])
    lines = [
        f"Data quality (data_processing {report.get('run_date', '?')}): "
        f"{len(warnings)} ordering warning(s)"
    ]
    return lines + [f"  {warning}" for warning in warnings]


def _metric(metrics: dict[str, Any], window: str, name: str) -> str:
    for key in (f"{window}_{name}", f"{window}.{name}"):
        if key in metrics:
            return f"{metrics[key]:.3f}"
    nested = metrics.get(window)
    return describe_metric(nested, name) if isinstance(nested, dict) else "n/a"
