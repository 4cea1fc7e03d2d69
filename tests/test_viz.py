"""Lineage: ``kedro viz build`` makes a static site that shows the four pipelines, offline.

One build per module, in a project copy (it writes ``./build``). The build runs with a Python audit
hook (``sitecustomize`` on ``PYTHONPATH``, so the multiprocessing child that does the work has it
too) that records and refuses every DNS lookup or connection to a host other than this machine:
the build must not try any (kedro-viz's PyPI check, kedro-telemetry's Heap calls).

The browser test serves ``build/`` on 127.0.0.1 and loads it in headless Chromium with
``--host-resolver-rules`` mapping every other host to "not found", so nothing can leave the machine
whatever the page does, and ``--log-net-log`` recording every request Chromium started. Requests
the page made (their initiator is the page, or the main frame itself) to another host must be on
``PAGE_ALLOWED_HOSTS`` (web fonts, CDNs: they fail and the app falls back) and must have failed.
Chromium's own background requests (update checks, sign-in probes, network time: initiator "not an
origin") are not the page's doing; they are checked to be Google service hosts, and failed too.
"""

from __future__ import annotations

import functools
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import urlopen

import pytest

from .conftest import copy_project

pytestmark = pytest.mark.e2e

PIPELINES = {"data_processing", "training", "inference", "monitoring"}
NAMESPACES = {"logistic_regression", "random_forest", "xgboost"}
DATASETS = {"gold_features", "gold_labels", "preprocessed_training_data", "champion_decision",
            "dated_predictions", "monitoring_report"}  # fmt: skip
LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "", None}
# Hosts the kedro-viz page may try; offline they fail and the app falls back (fonts, CDNs).
PAGE_ALLOWED_HOSTS = {"fonts.googleapis.com", "fonts.gstatic.com", "cdn.plot.ly", "unpkg.com",
                      "cdn.jsdelivr.net"}  # fmt: skip
# Chromium's own background traffic (component updater, sign-in, network time, autofill).
BROWSER_SERVICE_DOMAINS = ("google.com", "googleapis.com", "gstatic.com", "gvt1.com", "gvt2.com")

AUDIT_HOOK = textwrap.dedent(
    '''
    """Test-only: record and refuse network access to anything but this machine."""
    import os, socket, sys

    _LOG = os.environ["READMIT_NET_AUDIT_LOG"]
    _LOCAL = {"127.0.0.1", "localhost", "::1", "0.0.0.0", "", None, socket.gethostname()}

    def _record(kind, target):
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"{os.getpid()} {kind} {target!r}\\n")

    def _hook(event, args):
        if event == "socket.getaddrinfo":
            host = args[0].decode() if isinstance(args[0], bytes) else args[0]
            if host not in _LOCAL and not str(host).startswith("127."):
                _record("getaddrinfo", host)
                raise socket.gaierror(socket.EAI_NONAME, "network disabled by tests/test_viz.py")
        elif event == "socket.connect":
            host = args[1][0] if isinstance(args[1], tuple) else None  # AF_UNIX: a path
            if host is not None and host not in _LOCAL and not str(host).startswith("127."):
                _record("connect", args[1])
                raise ConnectionRefusedError("network disabled by tests/test_viz.py")

    sys.addaudithook(_hook)
    '''
)


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``kedro viz build`` in a project copy; returns ``build/`` and the network audit log."""
    project = copy_project(tmp_path_factory.mktemp("viz_project"))
    audit_dir = tmp_path_factory.mktemp("viz_audit")
    (audit_dir / "sitecustomize.py").write_text(AUDIT_HOOK)
    audit_log = audit_dir / "network.log"
    audit_log.touch()
    env = {
        **os.environ,
        "KEDRO_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(audit_dir), os.environ.get("PYTHONPATH")])),
        "READMIT_NET_AUDIT_LOG": str(audit_log),
    }
    kedro = Path(sys.executable).with_name("kedro")
    result = subprocess.run(
        [str(kedro), "viz", "build"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (project / "build" / "index.html").is_file(), result.stdout[-3000:]
    return project / "build", audit_log.read_text()


def test_build_makes_no_network_call(build: tuple[Path, str]) -> None:
    site, audit = build
    assert audit == "", f"kedro viz build tried to reach the network:\n{audit}"
    project = site.parent
    assert "consent: false" in (project / ".telemetry").read_text()
    index = (site / "index.html").read_text()
    assert "heap" not in index.lower(), "telemetry (Heap) was injected into index.html"
    version = json.loads((site / "api" / "version").read_text())
    assert version["latest"] == version["installed"] and not version["is_outdated"]  # no PyPI check


def test_build_lists_the_pipelines_namespaces_and_datasets(build: tuple[Path, str]) -> None:
    site, _ = build
    main = json.loads((site / "api" / "main").read_text())
    assert {p["id"] for p in main["pipelines"]} >= PIPELINES
    assert set(main["modular_pipelines"]) >= NAMESPACES
    # The default view is `__default__` (data_processing + training); the selector loads the others.
    views = [main]
    for pipeline in PIPELINES:
        view = json.loads((site / "api" / "pipelines" / pipeline).read_text())
        assert view["selected_pipeline"] == pipeline and view["nodes"]
        views.append(view)
    datasets = {n["name"] for view in views for n in view["nodes"] if n["type"] == "data"}
    assert datasets >= DATASETS, sorted(DATASETS - datasets)
    for namespace in NAMESPACES:
        assert f"{namespace}.registered_model" in datasets


# --------------------------------------------------------------------------------------------------


def _chromium() -> str:
    candidates = [
        os.environ.get("READMIT_CHROMIUM"),
        "chromium",
        "chromium-browser",
        "google-chrome",
    ]
    for candidate in filter(None, candidates):
        found = shutil.which(candidate)
        if found:
            return found
    reason = "no Chromium (apt-get install chromium, or set READMIT_CHROMIUM)"
    if os.environ.get("READMIT_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " and READMIT_REQUIRE_BROWSER=1", pytrace=False)
    pytest.skip(reason)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    served: list[str]

    def log_message(self, format: str, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.served.append(self.path)
        super().do_GET()


@pytest.fixture
def served(build: tuple[Path, str]):
    """``build/`` on an ephemeral 127.0.0.1 port; yields the base URL and the paths requested."""
    site, _ = build
    requested: list[str] = []
    handler = type("Handler", (_QuietHandler,), {"served": requested})
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(site))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", requested
    finally:
        server.shutdown()
        server.server_close()


def _load_net_log(path: Path) -> dict:
    text = path.read_text(encoding="utf-8", errors="replace").rstrip()
    try:
        return json.loads(text)
    except json.JSONDecodeError:  # cut short (browser killed): close the events array
        return json.loads(text.rstrip(",") + "]}")


def _requests(net_log: dict) -> list[dict]:
    """One entry per URL request: url, initiator, request_type and its net_error (0 = none)."""
    types = {v: k for k, v in net_log["constants"]["logEventTypes"].items()}
    started: dict[int, dict] = {}
    errors: dict[int, int] = {}
    for event in net_log["events"]:
        params = event.get("params") or {}
        source = event["source"]["id"]
        if types.get(event["type"]) == "URL_REQUEST_START_JOB" and "url" in params:
            started.setdefault(source, {**params, "source": source})
        if isinstance(params.get("net_error"), int) and params["net_error"] < 0:
            errors[source] = params["net_error"]
    return [{**r, "net_error": errors.get(s, 0)} for s, r in started.items()]


def test_site_renders_in_headless_chromium_without_leaving_the_machine(
    served, tmp_path: Path
) -> None:
    chromium = _chromium()
    from matplotlib.image import imread

    base, requested = served
    main = json.load(urlopen(f"{base}/api/main", timeout=10))  # the page's own data
    assert {p["id"] for p in main["pipelines"]} >= PIPELINES
    assert set(main["modular_pipelines"]) >= NAMESPACES
    requested.clear()

    screenshot, net_log = tmp_path / "viz.png", tmp_path / "net.json"
    command = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-extensions",
        "--no-first-run",
        "--no-default-browser-check",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
        f"--log-net-log={net_log}",
        "--virtual-time-budget=10000",
        f"--screenshot={screenshot}",
        "--window-size=1400,900",
        f"{base}/",
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        output, _ = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # Chromium's own process group, started above
        output, _ = process.communicate()
        pytest.fail(f"Chromium did not finish in 120 s:\n{output[-2000:]}")
    assert screenshot.is_file(), f"no screenshot (exit {process.returncode}):\n{output[-2000:]}"

    # The app fetched its data from our server, and drew something that is not a blank page.
    assert "/api/main" in requested, requested
    pixels = imread(screenshot)[..., :3]
    assert pixels.shape[:2] == (900, 1400)
    assert pixels.var() > 0.005, f"blank screenshot (pixel variance {pixels.var():.5f})"
    assert len({tuple(p) for p in pixels.reshape(-1, 3)[::97]}) > 20

    # Nothing but 127.0.0.1 was reached; what the page tried elsewhere is allowed and failed.
    requests = _requests(_load_net_log(net_log))
    assert any(urlsplit(r["url"]).path == "/api/main" for r in requests), "empty net log"
    outside = [r for r in requests if urlsplit(r["url"]).hostname not in LOOPBACK]
    page = [r for r in outside if r.get("request_type") == "main frame"
            or r.get("initiator", "not an origin") != "not an origin"]  # fmt: skip
    browser = [r for r in outside if r not in page]
    not_allowed = [r["url"] for r in page if urlsplit(r["url"]).hostname not in PAGE_ALLOWED_HOSTS]
    assert not not_allowed, f"the page requested hosts off the allowlist: {not_allowed}"
    unexpected = [
        r["url"] for r in browser
        if not urlsplit(r["url"]).hostname.endswith(BROWSER_SERVICE_DOMAINS)
    ]  # fmt: skip
    assert not unexpected, f"Chromium's background requests went to unexpected hosts: {unexpected}"
    succeeded = [r["url"] for r in outside if r["net_error"] == 0]
    assert not succeeded, f"requests left the machine and did not fail: {succeeded}"
