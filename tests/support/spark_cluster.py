"""Spark daemons from the pip pyspark distribution on 127.0.0.1: a standalone master and worker,
or a Spark Connect server. Used by the cluster tests and by ``bench_data_processing --cluster``.

Each daemon runs ``spark-class`` in a process group of its own (a worker's executor JVMs join
it), so stopping the group stops every JVM it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.net import free_port

START_TIMEOUT_S = 120  # the master's and the worker's (or the Connect server's) JVMs, busy 2 cores


class DaemonError(RuntimeError):
    """A daemon exited or did not get ready in time; the message says where its logs are."""


@dataclass(frozen=True)
class Standalone:
    master_url: str  # spark://127.0.0.1:<port>
    web_url: str  # the master's web UI, whose /json/ lists workers and applications
    logs: Path
    processes: list[subprocess.Popen]

    def state(self) -> dict:
        with urllib.request.urlopen(f"{self.web_url}/json/", timeout=5) as response:
            return json.load(response)

    def wait_ready(self) -> None:
        """Until a worker is ALIVE (the daemons start while other work goes on)."""

        def worker_alive() -> bool:
            try:
                return any(w["state"] == "ALIVE" for w in self.state()["workers"])
            except OSError:
                return False

        _wait_for(worker_alive, "a worker registered", self.processes, self.logs)


@dataclass(frozen=True)
class ConnectServer:
    url: str  # sc://127.0.0.1:<port>
    port: int
    log: Path
    process: subprocess.Popen

    def wait_ready(self) -> None:
        """Until the server accepts connections on its gRPC port."""

        def listening() -> bool:
            with socket.socket() as sock:
                sock.settimeout(1)
                return sock.connect_ex(("127.0.0.1", self.port)) == 0

        _wait_for(listening, "the Connect server listening", [self.process], self.log)


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


@contextlib.contextmanager
def standalone_cluster(root: Path, cores: int, memory: str) -> Iterator[Standalone]:
    """A master and one worker (``cores``, ``memory``), started but not awaited (see
    :meth:`Standalone.wait_ready`), stopped with every JVM they started."""
    home = spark_home()
    env = _daemon_env(home, root)
    port, web_port, worker_web_port = free_port(), free_port(), free_port()
    master_url, web_url = f"spark://127.0.0.1:{port}", f"http://127.0.0.1:{web_port}"
    daemons = {
        "master": [
            "org.apache.spark.deploy.master.Master",
            *("--host", "127.0.0.1", "--port", str(port), "--webui-port", str(web_port)),
        ],
        "worker": [
            "org.apache.spark.deploy.worker.Worker",
            master_url,
            *("--host", "127.0.0.1", "--cores", str(cores), "--memory", memory),
            *("--webui-port", str(worker_web_port)),
            *("--work-dir", str(root / "work")),  # the executors' cwd, stdout and stderr
        ],
    }
    processes = []
    try:
        for name, args in daemons.items():
            processes.append(_spark_class(home, args, root / f"{name}.log", env))
        yield Standalone(master_url, web_url, root, processes)
    finally:
        for process in reversed(processes):
            _stop(process)


@contextlib.contextmanager
def connect_server(root: Path, conf: dict[str, str]) -> Iterator[ConnectServer]:
    """A Spark Connect server with ``conf`` on a free loopback port, started but not awaited
    (see :meth:`ConnectServer.wait_ready`), stopped with its JVM.

    ``spark-class`` runs SparkSubmit with the server's class, as sbin/start-connect-server.sh does
    minus its daemonising: ``spark-class ...SparkConnectServer --conf ...`` would not read the
    ``--conf`` flags (the server then stops with "A master URL must be set in your
    configuration").
    """
    home = spark_home()
    port = free_port()
    conf = {
        **conf,
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
    }
    args = ["org.apache.spark.deploy.SparkSubmit"]
    args += ["--class", "org.apache.spark.sql.connect.service.SparkConnectServer"]
    args += [arg for key, value in conf.items() for arg in ("--conf", f"{key}={value}")]
    log = root / "connect-server.log"
    process = _spark_class(home, args, log, _daemon_env(home, root))
    try:
        yield ConnectServer(f"sc://127.0.0.1:{port}", port, log, process)
    finally:
        _stop(process)


def _wait_for(ready: Callable[[], bool], what: str, processes: list, logs: Path) -> None:
    """Poll ``ready`` every second for up to START_TIMEOUT_S; fail at once if a daemon exits."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready():
        for process in processes:
            if process.poll() is not None:
                raise DaemonError(f"a Spark daemon exited ({process.args[1]}); logs in {logs}")
        if time.monotonic() > deadline:
            raise DaemonError(f"not {what} within {START_TIMEOUT_S} s; logs in {logs}")
        time.sleep(1)


def _spark_class(home: Path, args: list[str], log: Path, env: dict) -> subprocess.Popen:
    """A Spark daemon in its own process group (the worker's executors join it)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(home / "bin" / "spark-class"), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=log.parent,  # anything a daemon writes to its working directory stays there
            start_new_session=True,
        )


def _daemon_env(home: Path, root: Path) -> dict[str, str]:
    return {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_LOCAL_DIRS": str(root / "local"),  # shuffle and spill files
        "SPARK_LOG_DIR": str(root),
    }


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the daemon's whole group (a worker's executor JVMs too), then SIGKILL to what
    is left of the group (bounded: 20 s for a clean exit)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=20)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
