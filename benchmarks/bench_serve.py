"""Latency and throughput of ``readmit serve`` on 127.0.0.1, at bounded concurrency and time.

    .venv/bin/python -m benchmarks.bench_serve [--seconds 8] [--rows 20000] [--seed 0] [--workers 1]
        [--pin]

Goals (issue 20, 2 cores): p99 <= 25 ms at concurrency 1 with explanations; >= 300 requests/s
at concurrency 32 without explanations; a batch of 1,000 encounters <= 150 ms.

Builds a throwaway project copy with a champion trained the way bench_inference builds one
(xgboost at the middle of the search space, on ``--rows`` synthetic gold encounters, calibrated),
starts ``readmit serve`` (``--workers`` uvicorn processes) on a free loopback port, and sends
single landing records (synthetic, of the model population) from 1, 8 and 32 concurrent
clients for ``--seconds`` each, with and without explanations; then 20 batches of 1,000 with
and 20 without. Every request has a timeout (10 s, a batch 30 s) and each level stops by
itself. Exits 1 when a request fails or a goal is missed; the load average is printed next to
the figures (the machine may be shared). Each level also prints the server's CPU time per
request (its processes' user + system time, from /proc): on a shared machine that is the
comparable figure, where latency and req/s depend on the CPU share granted.

The concurrent clients are ``benchmarks/loadgen.py``, a minimal HTTP/1.1 client in this process:
one keep-alive connection each, a record's request encoded once, answers framed by their
Content-Length, a client's first and every 20th answer checked to hold a probability in [0, 1]
(httpx's pool, used before, cost more CPU per request than the server and capped concurrency 32
on 2 shared cores). The batches and the readiness probe still use httpx. By default the clients
share all cores with the server, so the throughput is a lower bound of the server's. ``--pin``
(Linux, 1 worker, 2 CPUs or more) puts the server, its threads included, on one CPU and this
process on another: the figures are then one core's, what a 1-vCPU task gives. The final line
names the CPUs each side had.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks.bench_inference import train_champion, write_gold
from benchmarks.loadgen import encode_post, run_clients
from readmit_kedro.landing.monthly import admission_dates
from readmit_kedro.landing.synthetic import synthetic_frame
from readmit_kedro.schema import LANDING_COLUMNS
from readmit_kedro.serving.app import API_KEY_ENV, API_KEY_HEADER
from tests.conftest import copy_project
from tests.support.net import free_port

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
KEY = "bench-serve-key"
CONCURRENCY = (1, 8, 32)
BATCH, BATCHES = 1_000, 20
GOAL_P99_MS, GOAL_RPS, GOAL_BATCH_MS = 25.0, 300.0, 150.0


def landing_records(rows: int, seed: int) -> list[dict[str, Any]]:
    """Synthetic landing records of the model population (discharged home)."""
    raw = synthetic_frame(rows=rows, seed=seed)
    dates = admission_dates(raw["encounter_id"].astype(np.int64).to_numpy())
    frame = raw.assign(admission_date=dates.astype(str))[list(LANDING_COLUMNS)]
    return frame[frame["discharge_disposition_id"] == "1"].to_dict("records")


def drive(
    port: int, records: list[dict[str, Any]], clients: int, seconds: float, explain: bool
) -> tuple[np.ndarray, int, float]:
    """(latencies in ms, failed requests, wall seconds) of ``clients`` loops for ``seconds``."""
    path = "/v1/predict" + ("" if explain else "?explain=false")
    headers = {API_KEY_HEADER: KEY}
    requests = [encode_post(HOST, port, path, headers, json.dumps(r).encode()) for r in records]
    latencies, failed, wall = asyncio.run(
        run_clients(HOST, port, requests, clients, seconds, is_prediction)
    )
    return np.array(latencies), failed, wall


def is_prediction(body: bytes) -> bool:
    """Whether a 200's body is a scored encounter: guards the load generator's framing."""
    answer = json.loads(body)
    probability = answer.get("probability") if isinstance(answer, dict) else None
    return isinstance(probability, float) and 0.0 <= probability <= 1.0


def time_batches(base: str, records: list[dict[str, Any]], explain: bool) -> tuple[np.ndarray, int]:
    """Milliseconds of each of ``BATCHES`` requests of ``BATCH`` records, and the failures.

    The body is encoded once, as a hospital system's client would send it: encoding 1,000
    records per request is the client's time, not the service's."""
    body = json.dumps({"records": (records * (BATCH // len(records) + 1))[:BATCH]}).encode()
    url = f"{base}/v1/predict/batch" + ("" if explain else "?explain=false")
    headers = {API_KEY_HEADER: KEY, "Content-Type": "application/json"}
    times, failed = [], 0
    with httpx.Client(headers=headers, timeout=30) as http:
        for _ in range(BATCHES):
            sent = time.perf_counter()
            failed += http.post(url, content=body).status_code != 200
            times.append((time.perf_counter() - sent) * 1000)
    return np.array(times), failed


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and its descendants (uvicorn's workers), from /proc."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while being read
        child = int(stat.parent.name)
        parents[child] = int(fields[1])
        ticks[child] = int(fields[11]) + int(fields[12])  # utime, stime
    tree, added = {pid}, True
    while added:
        grown = tree | {child for child, parent in parents.items() if parent in tree}
        added, tree = grown != tree, grown
    return sum(ticks.get(p, 0) for p in tree) / os.sysconf("SC_CLK_TCK")


def pin_this_process(cpus: set[int]) -> None:
    """Every thread of this process on ``cpus`` (``sched_setaffinity(0)`` moves only the caller;
    training left idle OpenMP threads that must not wake on the server's CPU)."""
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(ProcessLookupError):  # the thread ended meanwhile
            os.sched_setaffinity(int(task.name), cpus)


def cpu_names(cpus: set[int]) -> str:
    return ("CPU " if len(cpus) == 1 else "CPUs ") + ",".join(map(str, sorted(cpus)))


def wait_ready(base: str, server: subprocess.Popen, seconds: float = 120) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        if server.poll() is not None:
            raise RuntimeError("readmit serve exited before it was ready")
        try:
            if httpx.get(f"{base}/ready", timeout=1).status_code == 200:
                return time.perf_counter() - started
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"readmit serve was not ready within {seconds:.0f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0, help="per concurrency level")
    parser.add_argument("--rows", type=int, default=20_000, help="synthetic gold to train on")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1, help="readmit serve --workers")
    parser.add_argument(
        "--pin", action="store_true", help="server on one CPU, load generator on another (Linux)"
    )
    args = parser.parse_args()
    available = sorted(os.sched_getaffinity(0))
    if args.pin and args.workers > 1:
        parser.error("--pin puts the server on one CPU: use it with --workers 1")
    if args.pin and len(available) < 2:
        parser.error(f"--pin needs 2 CPUs, this process may use {len(available)}")

    from kedro.config import OmegaConfigLoader

    params = OmegaConfigLoader(str(ROOT / "conf"), base_env="base", default_run_env="base")[
        "parameters"
    ]
    project = copy_project(Path(tempfile.mkdtemp(prefix="bench-serve-")))
    server, cwd = None, Path.cwd()
    os.chdir(project)  # the registry is signed with the project's key, as the server verifies
    try:
        write_gold(project, None, args.rows, args.seed)
        train_champion(project, "xgboost", params)
        records = landing_records(2_000, args.seed)
        if args.pin:
            pin_this_process({available[1]})  # after training, which had all the cores
        port = free_port()
        command = "from readmit_kedro.commands import cli; cli()"
        serve = ["serve", "--port", str(port), "--workers", str(args.workers)]
        server = subprocess.Popen(
            [sys.executable, "-c", command, *serve],
            env={**os.environ, API_KEY_ENV: KEY},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # in the child before exec, so its threads and processes inherit the CPU
            preexec_fn=(lambda: os.sched_setaffinity(0, {available[0]})) if args.pin else None,
        )
        base = f"http://{HOST}:{port}"
        print(f"readmit serve ready in {wait_ready(base, server):.1f} s (model load included)")
        failures, goals = 0, []
        for clients in CONCURRENCY:
            for explain in (True, False):
                cpu = server_cpu_seconds(server.pid)
                latencies, failed, wall = drive(port, records, clients, args.seconds, explain)
                cpu_ms = (server_cpu_seconds(server.pid) - cpu) * 1000 / len(latencies)
                failures += failed
                p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
                rps = len(latencies) / wall
                print(
                    f"concurrency {clients:2d}, explanations {'on ' if explain else 'off'}: "
                    f"{len(latencies)} requests in {wall:.1f} s = {rps:,.0f} req/s; latency p50 "
                    f"{p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms; server CPU "
                    f"{cpu_ms:.1f} ms/request; {failed} failed"
                )
                if clients == 1 and explain:
                    goals.append(("p99 at concurrency 1, explained", p99 <= GOAL_P99_MS))
                if clients == 32 and not explain:
                    goals.append(("req/s at concurrency 32, unexplained", rps >= GOAL_RPS))
        for explain in (True, False):
            cpu = server_cpu_seconds(server.pid)
            times, failed = time_batches(base, records, explain)
            cpu_ms = (server_cpu_seconds(server.pid) - cpu) * 1000 / BATCHES
            failures += failed
            print(
                f"batch of {BATCH}, explanations {'on ' if explain else 'off'}: median "
                f"{np.median(times):.0f} ms, max {times.max():.0f} ms over {BATCHES} requests; "
                f"server CPU {cpu_ms:.0f} ms/request; {failed} failed"
            )
        goals.append((f"batch of {BATCH} unexplained (median)", np.median(times) <= GOAL_BATCH_MS))
        placement = (
            f"server on {cpu_names(os.sched_getaffinity(server.pid))}, load generator on "
            f"{cpu_names(os.sched_getaffinity(0))}" + (" (--pin)" if args.pin else "")
        )
        print(
            "goals: "
            + "; ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in goals)
            + f"; {args.workers} worker(s); {placement}; load average {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} cores"
        )
        return 0 if failures == 0 and all(ok for _, ok in goals) else 1
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)
        os.chdir(cwd)
        shutil.rmtree(project, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
