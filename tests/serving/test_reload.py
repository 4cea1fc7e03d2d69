"""A newly promoted champion is served without a restart and without a failed request; a model
that fails its checks is not, and a pinned service never reloads."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier

from readmit_kedro.io.model_store import ChampionRecordDataset, ServingModelDataset
from readmit_kedro.io.registry import ModelRegistry
from readmit_kedro.model.calibration import calibrate
from readmit_kedro.pipelines.training.preprocessing import fit_preprocessor
from readmit_kedro.schema import FEATURE_COLUMNS, TARGET
from readmit_kedro.serving.app import API_KEY_ENV, API_KEY_HEADER, create_app
from readmit_kedro.serving.scoring import ModelSource, Scorer
from tests.pipelines.inference.conftest import PREPROCESSING, _windows, register
from tests.serving.conftest import API_KEY
from tests.serving.test_cli import _wait_until_ready
from tests.support.net import free_port

POLL_SECONDS = 0.2
SWITCH_BOUND_SECONDS = 30  # a poll, then a whole load with its checks, on 2 busy cores


@pytest.fixture(scope="module")
def challenger(gold):
    """Another calibrated xgboost (more, deeper trees): a different model with other scores."""
    train, calibration = _windows(gold)
    preprocessor = fit_preprocessor(train, PREPROCESSING, feature_selection=False, seed=0)
    estimator = XGBClassifier(n_estimators=60, max_depth=4, n_jobs=1, random_state=1)
    estimator.fit(preprocessor.transform(train[list(FEATURE_COLUMNS)]), train[TARGET])
    bundle = Pipeline([("preprocess", preprocessor), ("model", estimator)])
    return calibrate(bundle, calibration, calibration[TARGET].to_numpy())


@pytest.fixture
def server(registry, params, id_mapping) -> Iterator[str]:
    """The service on a real uvicorn server (127.0.0.1, a free port), watching the champion."""

    def load() -> Scorer:
        return Scorer(ServingModelDataset(path=registry.root).load(), params, id_mapping)

    watch = (ChampionRecordDataset(path=registry.root).load, POLL_SECONDS)
    app = create_app(load, API_KEY, watch)
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not _ready(base):
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.1)
    yield base
    uv.should_exit = True
    thread.join(timeout=30)


class Traffic:
    """Clients posting one encounter in a loop until stopped; every answer's status and model."""

    def __init__(self, base: str, record: dict[str, Any], clients: int = 3) -> None:
        self.answers: list[tuple[int, str | None]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(base, record)) for _ in range(clients)
        ]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _loop(self, base: str, record: dict[str, Any]) -> None:
        with httpx.Client(base_url=base, headers={API_KEY_HEADER: API_KEY}, timeout=30) as http:
            while not self._stop.is_set():
                try:
                    response = http.post("/v1/predict", json=record)
                except httpx.HTTPError as error:  # a dropped connection counts as a failure
                    self.errors.append(repr(error))
                    continue
                version = response.json().get("model", {}).get("version")
                self.answers.append((response.status_code, version))


def test_a_new_champion_is_served_without_a_failed_request(
    server, registry, challenger, landing_rows
):
    record = landing_rows[landing_rows["discharge_disposition_id"] == "1"].iloc[0].to_dict()
    old = _health(server)["version"]
    with Traffic(server, record) as traffic:
        time.sleep(1.0)  # requests on the old champion first
        new = register(registry, "xgboost", challenger, promote=True)  # as training promotes
        switched = _wait_for_version(server, new)
        time.sleep(1.0)  # and requests on the new one
    assert switched <= SWITCH_BOUND_SECONDS, f"/health still reports {old}"
    assert traffic.errors == []
    assert [status for status, _ in traffic.answers if status != 200] == []
    versions = [version for _, version in traffic.answers]
    assert versions[0] == old and versions[-1] == new
    assert set(versions) == {old, new}  # every answer is from one model or the other


def test_a_champion_that_fails_its_checks_is_not_served(
    server, registry, gold, landing_rows, caplog
):
    old = _health(server)["version"]
    train, _ = _windows(gold)
    encoded = train[["age_years", "time_in_hospital"]].to_numpy()
    unnamed = XGBClassifier(n_estimators=2).fit(encoded, train[TARGET])  # no input column names
    with caplog.at_level(logging.ERROR, logger="readmit_kedro.serving.reload"):
        new = register(registry, "xgboost", unnamed, promote=True)
        deadline = time.monotonic() + SWITCH_BOUND_SECONDS
        while "loading the new champion" not in caplog.text:
            assert time.monotonic() < deadline, "the failed load was not logged"
            time.sleep(0.1)
    assert f"kept serving xgboost {old}: loading the new champion xgboost {new}" in caplog.text
    assert "names no input columns" in caplog.text  # the start-up check that refused it
    time.sleep(5 * POLL_SECONDS)  # later polls neither retry it nor swap
    assert caplog.text.count("loading the new champion") == 1
    assert _health(server)["version"] == old
    record = landing_rows[landing_rows["discharge_disposition_id"] == "1"].iloc[0].to_dict()
    answer = httpx.post(f"{server}/v1/predict", json=record, headers={API_KEY_HEADER: API_KEY})
    assert answer.status_code == 200 and answer.json()["model"]["version"] == old


def test_readmit_serve_reloads_the_projects_new_champion(
    kedro_project, champion_bundle, challenger
):
    """The command end to end: the env's catalog entry and poll interval, the load in a thread."""
    registry = ModelRegistry("data/06_models/registry")  # signed with the project's local key
    register(registry, "xgboost", champion_bundle, promote=True)
    port = free_port()
    command = "from readmit_kedro.commands import cli; cli()"
    server = subprocess.Popen(
        [sys.executable, "-c", command, "serve", "--port", str(port)],
        env={**os.environ, API_KEY_ENV: API_KEY},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(base, server)
        new = register(registry, "xgboost", challenger, promote=True)
        poll = 5  # serving.champion_poll_seconds in conf/base
        switched = _wait_for_version(base, new, poll + SWITCH_BOUND_SECONDS)
        assert switched < float("inf"), "/health never reported the promoted champion"
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_pinned_service_never_watches_the_champion(tmp_path):
    assert ModelSource(tmp_path, None, ("xgboost", "v1")).champion_watch() is None


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _health(base: str) -> dict[str, Any]:
    return httpx.get(f"{base}/health", timeout=10).json()["model"]


def _wait_for_version(base: str, version: str, bound: float = SWITCH_BOUND_SECONDS) -> float:
    """Seconds until /health reports ``version`` (infinity after ``bound``)."""
    started = time.monotonic()
    while time.monotonic() - started < bound:
        if _health(base)["version"] == version:
            return time.monotonic() - started
        time.sleep(0.05)
    return float("inf")
