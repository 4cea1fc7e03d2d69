"""The HTML report: self-contained, aggregates only, and rendered for real by headless Chromium."""

from __future__ import annotations

import base64
import io
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from readmit_kedro.pipelines.monitoring import nodes

from .conftest import CLEAN, RUN_DATE, make_world
from .test_drift import inject_drift

CHROMIUM = "/usr/bin/chromium"
HEADINGS = (
    "Summary",
    "Alerts",
    "Performance",
    "Data drift",
    "Score distribution",
    "Feature importance (mean |SHAP|)",
)


def run_monitoring(features, labels, predictions, profile: dict, config: dict, champion) -> dict:
    """The report-producing nodes in pipeline order, in memory."""
    performance = nodes.compute_performance(
        predictions, labels, features, profile, RUN_DATE, config
    )
    drift = nodes.compute_data_drift(predictions, features, profile, RUN_DATE, config)
    signal = nodes.decide_retraining(performance, drift, profile, RUN_DATE, config)
    importance = nodes.compute_feature_importance(
        predictions, features, champion, profile, RUN_DATE, config
    )
    alerts = nodes.build_alerts(performance, drift, signal, config, CLEAN, importance)
    return nodes.assemble_report(performance, drift, signal, alerts, config, CLEAN, importance)[0]


@pytest.fixture(scope="module")
def drifted_report(reference_profile: dict, config: dict, champion) -> dict:
    features, labels, predictions = make_world(5_000, seed=21)
    predictions = predictions.assign(
        probability=np.random.default_rng(1).permutation(predictions["probability"].to_numpy())
    )
    return run_monitoring(
        inject_drift(features), labels, predictions, reference_profile, config, champion
    )


@pytest.fixture
def chromium() -> str:
    if Path(CHROMIUM).is_file():
        return CHROMIUM
    reason = f"headless Chromium not installed at {CHROMIUM} (apt-get install chromium)"
    if os.environ.get("READMIT_REQUIRE_BROWSER") == "1":
        pytest.fail(reason + " and READMIT_REQUIRE_BROWSER=1")
    pytest.skip(reason)


def test_report_page_is_self_contained_and_holds_aggregates_only(drifted_report: dict) -> None:
    pages, *figures = nodes.render_report(drifted_report)
    assert set(pages) == {f"report_{RUN_DATE}", "latest"}
    page = pages["latest"]
    assert len(figures) == 4
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 4
    for image in images:
        assert imread(io.BytesIO(base64.b64decode(image)), format="png").shape[0] > 100
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched
    assert "<script" not in page
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in page
    assert "Retraining recommended: <b>yes</b>" in page
    text = re.sub(r"base64,[^\"]+", "", page)
    assert "900000" not in text  # no encounter id (they start at 9,000,000,000)


def test_unavailable_metrics_are_shown_with_their_reason(
    reference_profile, config, champion
) -> None:
    features, labels, predictions = make_world(500, seed=22)
    report = run_monitoring(
        features, labels.iloc[:0], predictions, reference_profile, config, champion
    )
    page = nodes.render_report(report)[0]["latest"]
    assert "Metrics not available: only 0 mature labelled predictions" in page


@pytest.mark.slow
def test_the_page_renders_in_headless_chromium(
    drifted_report: dict, chromium: str, tmp_path: Path
) -> None:
    page = tmp_path / "report.html"
    page.write_text(nodes.render_report(drifted_report)[0]["latest"], encoding="utf-8")
    screenshot = tmp_path / "shot.png"
    args = [
        chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,2000",
    ]  # fmt: skip
    subprocess.run(
        [*args, f"--screenshot={screenshot}", page.as_uri()],
        check=True, capture_output=True, timeout=90,
    )  # fmt: skip
    pixels = imread(screenshot)
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels[..., :3].std() > 0.05  # not a blank page
    dom = subprocess.run(
        [*args, "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True, timeout=90
    ).stdout
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in dom
    rendered = re.findall(r'<img alt="(\w+)"', dom)
    assert rendered == ["roc", "calibration", "psi", "score"]


def test_the_metrics_table_shows_auc_intervals(drifted_report: dict) -> None:
    performance = drifted_report["performance"]
    page = nodes.render_report(drifted_report)[0]["latest"]
    for name in ("roc_auc", "pr_auc"):
        interval = performance["intervals"][name]
        assert interval["low"] <= performance[name] <= interval["high"]
        shown = f"{performance[name]:.4f} [{interval['low']:.4f}, {interval['high']:.4f}]"
        assert f"<td>{shown}</td>" in page, name
    assert "95% interval [low, high]: patient-clustered bootstrap" in page
