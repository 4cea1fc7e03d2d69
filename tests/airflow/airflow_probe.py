"""Run by tests/airflow and benchmarks with the Airflow virtualenv's interpreter (never the project's).

    .airflow-venv/bin/python tests/airflow/airflow_probe.py describe DAG_FOLDER [--conf JSON]
        [--logical-date ISO] [--next-runs N]
    .airflow-venv/bin/python tests/airflow/airflow_probe.py params DAG_FILE --cases JSON
    .airflow-venv/bin/python tests/airflow/airflow_probe.py gate DAG_FILE --signal S --flag F
        --cases JSON [--logical-date ISO]
    .airflow-venv/bin/python tests/airflow/airflow_probe.py notify DAG_FILE --cases JSON
    .airflow-venv/bin/python tests/airflow/airflow_probe.py deadline DAG_FILE --interval-s S

`describe` prints the DagBag's import errors and, per DAG, its schedule, settings and tasks, with
every task's templated fields rendered for a DagRun of the given date and conf. `params` imports
one generated DAG file and calls its kedro_params() for each dag_run.conf of a list; `gate` calls
its signal_allows(). Each prints one line `PROBE_RESULT=<json>`. Needs AIRFLOW_HOME (a temporary
folder); no metadata database.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime


def _dag_run(dag_id: str, logical_date: datetime | None, conf: dict):
    from airflow.sdk.api.datamodels._generated import DagRun

    run_after = logical_date or datetime.now(UTC)
    return DagRun(
        dag_id=dag_id,
        run_id=f"manual__{run_after.isoformat()}",
        logical_date=logical_date,
        data_interval_start=logical_date,
        data_interval_end=logical_date,
        run_after=run_after,
        start_date=run_after,
        end_date=None,
        run_type="manual",
        state="running",
        conf=conf,
        consumed_asset_events=[],
        partition_key=None,
    )


def _next_runs(dag, count: int) -> list[str]:
    from airflow.serialization.encoders import coerce_to_core_timetable
    from airflow.timetables.base import TimeRestriction

    timetable = coerce_to_core_timetable(dag.timetable)
    runs: list[str] = []
    last = None
    restriction = TimeRestriction(earliest=dag.start_date, latest=None, catchup=True)
    while len(runs) < count:
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last, restriction=restriction
        )
        if info is None:
            break
        runs.append(info.run_after.isoformat())
        last = info.data_interval
    return runs


def _task(task, dag_run) -> dict:
    context = {
        "dag": task.dag,
        "task": task,
        "dag_run": dag_run,
        "run_id": dag_run.run_id,
        "ds": dag_run.logical_date.strftime("%Y-%m-%d") if dag_run.logical_date else None,
        "logical_date": dag_run.logical_date,
    }
    described = {
        "type": type(task).__name__,
        "upstream": sorted(task.upstream_task_ids),
        "downstream": sorted(task.downstream_task_ids),
        "retries": task.retries,
        "execution_timeout_s": (
            task.execution_timeout.total_seconds() if task.execution_timeout else None
        ),
    }
    try:
        task.render_template_fields(context)
    except Exception as exc:  # reported, and the tests fail on it
        described["render_error"] = f"{type(exc).__name__}: {exc}"
    fields = {}
    for name in task.template_fields:
        value = getattr(task, name, None)
        try:
            json.dumps(value)
        except TypeError:
            value = repr(value)
        fields[name] = value
    described["fields"] = fields
    for name in ("op_kwargs", "skip_when_already_exists", "wait_for_completion"):
        if hasattr(task, name):
            described[name] = getattr(task, name)
    return described


def describe(folder: str, conf: dict, logical_date: datetime | None, next_runs: int) -> dict:
    from airflow.models import DagBag
    from airflow.serialization.encoders import encode_timetable
    from airflow.serialization.serialized_objects import DagSerialization

    try:
        bag = DagBag(dag_folder=folder, include_examples=False)
    except TypeError:  # Airflow 3.3 dropped include_examples (examples come from bundles)
        bag = DagBag(dag_folder=folder)
    dags = {}
    for dag_id, dag in bag.dags.items():
        dag_run = _dag_run(dag_id, logical_date, conf)
        DagSerialization.to_dict(dag)  # what the DAG processor stores: must not raise
        dags[dag_id] = {
            "fileloc": dag.fileloc,
            "timetable": type(dag.timetable).__name__,
            "timetable_args": encode_timetable(dag.timetable),
            "next_runs": _next_runs(dag, next_runs),
            "start_date": dag.start_date.isoformat(),
            "catchup": dag.catchup,
            "dagrun_timeout_s": dag.dagrun_timeout.total_seconds() if dag.dagrun_timeout else None,
            "deadlines": [
                {
                    "reference": type(alert.reference).__name__,
                    "interval_s": alert.interval.total_seconds(),
                    "callback": type(alert.callback).__name__,
                    "path": alert.callback.path,
                    "kwargs": alert.callback.kwargs,
                }
                for alert in dag.deadline or []
            ],
            "max_active_runs": dag.max_active_runs,
            "max_active_tasks": dag.max_active_tasks,
            "tags": sorted(dag.tags),
            "owner": dag.owner,
            "tasks": {task.task_id: _task(task, dag_run) for task in dag.tasks},
        }
    leaked = sorted(
        name
        for name in sys.modules
        if name.split(".")[0] in {"kedro", "kedro_datasets", "readmit_kedro", "pyspark"}
    )
    return {
        "import_errors": {k: str(v) for k, v in bag.import_errors.items()},
        "dags": dags,
        "project_modules_imported": leaked,
    }


def _load_dag_module(path: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location("generated_dag", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _outcome(call) -> dict:
    try:
        return {"value": call()}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}


def params(path: str, cases: list[dict], logical_date: datetime | None) -> list[dict]:
    module = _load_dag_module(path)
    return [
        _outcome(lambda conf=conf: module.kedro_params(_dag_run(module.DAG_ID, logical_date, conf)))
        for conf in cases
    ]


def gate(path: str, signal: str, flag: str, cases: list[dict], logical_date) -> list[dict]:
    """signal_allows() once per case (training_prerequisites_met() when signal is
    "training_prerequisites"); a case may first write files (file or s3:// URL) and set
    environment variables: {"conf": {}, "env": {}, "write": {"to": ..., "text": ...} or a list}."""
    import os
    from pathlib import Path

    module = _load_dag_module(path)
    results = []
    for case in cases:
        os.environ.update(case.get("env", {}))
        writes = case.get("write") or []
        for write in [writes] if isinstance(writes, dict) else writes:
            if write["to"].startswith("s3://"):
                from airflow.providers.amazon.aws.hooks.s3 import S3Hook

                bucket, key = S3Hook.parse_s3_url(write["to"])
                S3Hook(aws_conn_id=module.AWS_CONN_ID).load_string(
                    write["text"], key, bucket_name=bucket, replace=True
                )
            else:
                Path(write["to"]).parent.mkdir(parents=True, exist_ok=True)
                Path(write["to"]).write_text(write["text"])
        dag_run = _dag_run(module.DAG_ID, logical_date, case.get("conf", {}))
        if signal == "training_prerequisites":
            check = lambda d=dag_run: module.training_prerequisites_met(dag_run=d)  # noqa: E731
        else:
            check = lambda d=dag_run: module.signal_allows(signal, flag, dag_run=d)  # noqa: E731
        results.append(_outcome(check))
    return results


def notify(path: str, cases: list[dict], logical_date) -> list[dict]:
    """Per case, the DAG's own failure callbacks ({"failure": true}) or notifiers(severity, ...)
    called with a DagRun context, in this process (what the dag processor / task runner does)."""
    module = _load_dag_module(path)
    results = []
    for case in cases:
        dag_run = _dag_run(module.DAG_ID, logical_date, {})
        context = {"dag": module.dag, "dag_run": dag_run, "reason": case.get("reason", "test")}
        if case.get("failure"):
            callbacks = module.dag.on_failure_callback
        else:
            callbacks = module.notifiers(case["severity"], case["title"], case["text"])

        def run(callbacks=callbacks, context=context) -> int:
            for callback in callbacks:
                callback(context)
            return len(callbacks)

        results.append(_outcome(run))
    return results


def deadline(path: str, interval_s: float) -> list[dict]:
    """Run the callbacks of the DAG's deadline alerts of this interval as the triggerer does
    (airflow.triggers.callback.CallbackTrigger: import the path, await it with its kwargs)."""
    import asyncio

    from airflow.triggers.callback import CallbackTrigger

    module = _load_dag_module(path)
    results = []
    for alert in module.dag.deadline or []:
        if alert.interval.total_seconds() != interval_s:
            continue
        trigger = CallbackTrigger(alert.callback.path, dict(alert.callback.kwargs))

        async def events(trigger=trigger) -> list:
            return [event.payload async for event in trigger.run()]

        results.append(
            {
                "reference": type(alert.reference).__name__,
                "path": alert.callback.path,
                "events": asyncio.run(events()),
            }
        )
    return results


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("describe")
    d.add_argument("folder")
    d.add_argument("--conf", default="{}")
    d.add_argument("--logical-date", default="2026-01-04T03:00:00+00:00")
    d.add_argument("--next-runs", type=int, default=6)
    p = sub.add_parser("params")
    p.add_argument("file")
    p.add_argument("--cases", required=True)
    p.add_argument("--logical-date", default="2026-01-04T03:00:00+00:00")
    g = sub.add_parser("gate")
    g.add_argument("file")
    g.add_argument("--signal", required=True)
    g.add_argument("--flag", required=True)
    g.add_argument("--cases", required=True)
    g.add_argument("--logical-date", default="2026-01-04T03:00:00+00:00")
    n = sub.add_parser("notify")
    n.add_argument("file")
    n.add_argument("--cases", required=True)
    n.add_argument("--logical-date", default="2026-01-04T03:00:00+00:00")
    dl = sub.add_parser("deadline")
    dl.add_argument("file")
    dl.add_argument("--interval-s", type=float, required=True)
    dl.add_argument("--logical-date", default=None)
    args = parser.parse_args(argv)
    logical_date = datetime.fromisoformat(args.logical_date) if args.logical_date else None
    if args.command == "describe":
        result = describe(args.folder, json.loads(args.conf), logical_date, args.next_runs)
    elif args.command == "deadline":
        result = deadline(args.file, args.interval_s)
    elif args.command == "notify":
        result = notify(args.file, json.loads(args.cases), logical_date)
    elif args.command == "params":
        result = params(args.file, json.loads(args.cases), logical_date)
    else:
        result = gate(args.file, args.signal, args.flag, json.loads(args.cases), logical_date)
    print("PROBE_RESULT=" + json.dumps(result, sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
