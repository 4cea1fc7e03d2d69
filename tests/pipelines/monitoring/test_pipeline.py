"""The monitoring pipeline run through Kedro in a project copy, inputs written where the catalog says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from readmit_kedro.io.published import PandasPublishedTable
from readmit_kedro.io.registry import LoadedModel, ModelRegistry
from tests.support.net import free_port

from .conftest import CHAMPION, RUN_DATE, make_world
from .test_drift import inject_drift

pytestmark = pytest.mark.e2e

PREVIOUS_RUN = "2008-12-24"
QUALITY_REPORT = {
    "run_date": RUN_DATE,
    "ordering_warnings": ["2008H1: no_label_with_later_encounter_share 8.8% > 1.0% (3226 rows)"],
}


def write_inputs(
    project: Path,
    features: pd.DataFrame,
    labels: pd.DataFrame,
    predictions: pd.DataFrame,
    profile: dict,
) -> None:
    """What data_processing, inference and training leave behind, at the catalog's paths."""
    for table, frame in (("gold_features", features), ("gold_labels", labels)):
        PandasPublishedTable(
            filepath=str(project / "data" / "04_feature" / table), partition_by=["admission_year"]
        ).save(frame)
    predictions.to_parquet(project / "data" / "07_model_output" / "prediction_store.parquet")
    champion_metadata = project / "data" / "06_models" / "registry" / "metadata"
    champion_metadata.mkdir(parents=True, exist_ok=True)
    (champion_metadata / "reference_profile.json").write_text(json.dumps(profile))
    quality = project / "data" / "08_reporting" / "data_quality"
    quality.mkdir(parents=True)
    (quality / "data_quality_report.json").write_text(json.dumps(QUALITY_REPORT))


def test_monitoring_end_to_end(
    kedro_project: Path,
    run_pipeline,
    reference_profile: dict,
    champion: LoadedModel,
    webhook,
    capfd: pytest.CaptureFixture,
    caplog: pytest.LogCaptureFixture,
) -> None:
    features, labels, predictions = make_world(6_000, seed=31)
    degraded = predictions.assign(
        probability=np.random.default_rng(2).permutation(predictions["probability"].to_numpy())
    )
    (kedro_project / "data" / "07_model_output").mkdir(parents=True)
    # the served model (inference_serving_model: the champion), which the profile describes
    registry = ModelRegistry(str(kedro_project / "data" / "06_models" / "registry"))
    version = registry.register(CHAMPION["algorithm"], champion.model, metrics={}, metadata={})
    registry.promote(CHAMPION["algorithm"], version["version"], "test")
    profile = {**reference_profile, "champion": {**CHAMPION, "version": version["version"]}}
    write_inputs(kedro_project, inject_drift(features), labels, degraded, profile)
    url, posted = webhook
    local = kedro_project / "conf" / "local"
    # This env's channels, as Kedro credentials: a live webhook and a mail relay that is down.
    credentials = {
        "readmit_alerts": {
            "webhook": {"url": url},
            "smtp": {"host": "127.0.0.1", "port": free_port()},
        }
    }
    (local / "credentials.yml").write_text(yaml.safe_dump(credentials))
    recipients = {"alerting": {"email": {"recipients": ["oncall@example.org"]}}}
    (local / "parameters_monitoring.yml").write_text(yaml.safe_dump(recipients))

    run_pipeline(kedro_project, "monitoring", run_date=PREVIOUS_RUN)
    run_pipeline(kedro_project, "monitoring", run_date=RUN_DATE)

    out = kedro_project / "data" / "08_reporting"
    signal = json.loads((out / "signals" / "retrain.json").read_text())
    assert set(signal) == {
        "run_date", "retrain_recommended", "reasons", "last_training_run_date", "cooldown",
    }  # fmt: skip
    assert signal["run_date"] == RUN_DATE and signal["retrain_recommended"] is True
    assert any(r.startswith("concept drift: roc_auc") for r in signal["reasons"])
    assert any("num_lab_procedures" in r for r in signal["reasons"])

    reports = out / "monitoring" / "reports"
    assert sorted(p.name for p in reports.iterdir()) == [
        "latest.html", "latest.json",
        f"report_{PREVIOUS_RUN}.html", f"report_{PREVIOUS_RUN}.json",
        f"report_{RUN_DATE}.html", f"report_{RUN_DATE}.json",
    ]  # fmt: skip
    latest = json.loads((reports / "latest.json").read_text())
    assert latest == json.loads((reports / f"report_{RUN_DATE}.json").read_text())
    assert json.loads((reports / f"report_{PREVIOUS_RUN}.json").read_text())["run_date"] == (
        PREVIOUS_RUN
    )
    assert latest["label_maturity"]["predictions_in_window"] == 6_000
    assert set(latest["data_drift"]["drifted_features"]) == {"num_lab_procedures", "admission_type"}
    assert latest["data_quality"]["ordering_warnings"] == QUALITY_REPORT["ordering_warnings"]
    importance = latest["feature_importance"]
    assert importance["available"] is True and len(importance["periods"]) == 3
    assert importance["model"]["version"] == version["version"]
    assert (reports / "latest.html").read_text() == (
        reports / f"report_{RUN_DATE}.html"
    ).read_text()
    plots = sorted((out / "monitoring" / "plots").iterdir())
    assert [p.name for p in plots] == [
        "calibration.png", "psi.png", "roc.png", "score_distribution.png",
    ]  # fmt: skip
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in plots)

    delivery = json.loads((out / "monitoring" / "alerts" / "delivery_log.json").read_text())
    status = {d["channel"]: d["status"] for d in delivery["deliveries"]}
    assert status == {"log": "sent", "webhook": "sent", "email": "failed"}  # the run still passed
    assert len(posted) == 2  # one post per run
    assert "[CRITICAL] Model performance dropped" in posted[-1]["body"]["text"]

    # Aggregates only: no encounter or patient id in any file written, nor in any log line.
    ids = {str(i) for i in (*predictions["encounter_id"], *predictions["patient_nbr"])}
    for path in out.rglob("*"):
        if path.suffix in {".json", ".html"}:
            assert not integers(path.read_text()) & ids, path
    # Kedro configures logging once, when kedro.framework.project is first imported: before this
    # test, records reach caplog's handler; during it, that handler is replaced by conf/logging.yml's
    # console handler on this test's stdout. Either way the log lines are in one of the two.
    captured = capfd.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert "Retraining recommended: True" in logs
    assert not integers(logs) & ids


def integers(text: str) -> set[str]:
    """Every whole integer token of ``text`` (digits of floats and base64 images excluded)."""
    return set(re.findall(r"(?<![\w.+/])\d+(?![\w.])", text))
