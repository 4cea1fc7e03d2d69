"""Ordering warnings of silver's quality report reach monitoring's alerts, JSON and HTML report."""

from __future__ import annotations

import json

from readmit_kedro.pipelines.monitoring import nodes

from .conftest import NOT_EXPLAINED, RUN_DATE, make_world

WARNING = "2008H1: contradicted_history_share 12.1% > 5.0% (1029 rows): encounter order looks wrong"
QUALITY_REPORT = {"run_date": "2008-12-31", "silver_rows": 42, "ordering_warnings": [WARNING]}


def run_monitoring(reference_profile: dict, config: dict, data_quality: dict):
    features, labels, predictions = make_world(500, seed=23)
    performance = nodes.compute_performance(
        predictions, labels, features, reference_profile, RUN_DATE, config
    )
    drift = nodes.compute_data_drift(predictions, features, reference_profile, RUN_DATE, config)
    signal = nodes.decide_retraining(performance, drift, reference_profile, RUN_DATE, config)
    alerts = nodes.build_alerts(performance, drift, signal, config, data_quality, NOT_EXPLAINED)
    report = nodes.assemble_report(
        performance, drift, signal, alerts, config, data_quality, NOT_EXPLAINED
    )[0]
    return signal, report


def test_ordering_warnings_alert_and_reach_the_report(reference_profile, config) -> None:
    signal, report = run_monitoring(reference_profile, config, QUALITY_REPORT)
    assert report["data_quality"] == {"run_date": "2008-12-31", "ordering_warnings": [WARNING]}
    alert = next(a for a in report["alerts"] if a["title"].startswith("Source data quality"))
    assert alert["severity"] == "warning" and alert["message"] == WARNING
    assert not any(WARNING in reason for reason in signal["reasons"])  # never a retrain reason
    json.dumps(report, allow_nan=False)
    page = nodes.render_report(report)[0]["latest"]
    assert "<h2>Source data quality</h2>" in page
    assert "1 warning(s)" in page and "2008H1: contradicted_history_share 12.1%" in page


def test_a_clean_quality_report_raises_no_alert(reference_profile, config) -> None:
    _, report = run_monitoring(
        reference_profile, config, {**QUALITY_REPORT, "ordering_warnings": []}
    )
    assert report["data_quality"]["ordering_warnings"] == []
    assert not any(a["title"].startswith("Source data quality") for a in report["alerts"])
    assert "no warning." in nodes.render_report(report)[0]["latest"]
