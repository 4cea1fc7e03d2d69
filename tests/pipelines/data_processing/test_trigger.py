"""The signal data processing writes for the Airflow gates: new rows, and training's prerequisites."""

from __future__ import annotations

import re

import pytest

from readmit_kedro.pipelines.data_processing.trigger import decide_training_trigger
from readmit_kedro.pipelines.training.checks import check_training_data
from readmit_kedro.pipelines.training.config import validate_training_config
from readmit_kedro.pipelines.training.modeling import ESTIMATORS
from readmit_kedro.run_context import ConfigError
from tests.pipelines.training.conftest import load_project_config
from tests.support.gold import make_gold_like, with_fingerprints

INGESTION = {"run_date": "2008-12-31", "new_extracts": ["x"], "new_rows": 5000}
QUALITY = {"model_population": 10}


@pytest.fixture(scope="module")
def training_params() -> dict:
    params = load_project_config("dev", "parameters")
    keys = ("temporal_splits", "model_config", "training_config", *ESTIMATORS)
    return {"run_date": INGESTION["run_date"], **{key: params[key] for key in keys}}


@pytest.fixture(scope="module")
def gold():
    return with_fingerprints(*make_gold_like(4000, seed=7))


def _signal(gold, training_params, new_rows=5000, trigger=None, **overrides):
    return decide_training_trigger(
        {**INGESTION, "new_rows": new_rows},
        QUALITY,
        trigger or {"min_new_rows": 5000},
        *gold,
        **{**training_params, **overrides},
    )


@pytest.mark.parametrize(("new_rows", "expected"), [(4999, False), (5000, True)])
def test_training_trigger(gold, training_params, new_rows, expected):
    signal = _signal(gold, training_params, new_rows)
    assert signal["train_recommended"] is expected and str(new_rows) in signal["reason"]
    assert signal["training"]["prerequisites_met"] is True


def test_the_signal_holds_training_own_check_and_digest(gold, training_params):
    """The gate decides on the figures check_training_data would compute in the container."""
    training = _signal(gold, training_params)["training"]
    plan = validate_training_config(**training_params)
    report = check_training_data(*gold, plan, training_params["training_config"], {})
    assert training["partitions"] == report["partitions"] == list(range(1999, 2009))
    assert training["rows"] == report["rows"] and training["positives"] == report["positives"]
    assert training["inputs_sha256"] == report["inputs_sha256"]
    assert training["problems"] == [] and training["algorithms"] == plan["algorithms"]
    assert training["windows"] == plan["windows"]


def test_missing_prerequisites_close_both_gates_with_every_reason(gold, training_params):
    features, labels, *_ = gold
    keep = features["admission_year"] >= 2001
    signal = _signal(with_fingerprints(features[keep], labels[keep]), training_params, 90000)
    training = signal["training"]
    assert signal["train_recommended"] is False and training["prerequisites_met"] is False
    assert "8 admission_year partitions up to 2008" in signal["reason"]
    assert training["partitions"] == list(range(2001, 2009))


def test_an_empty_gold_is_a_problem_not_a_crash(gold, training_params):
    features, labels, *_ = gold
    signal = _signal(with_fingerprints(features.head(0), labels.head(0)), training_params)
    assert signal["training"]["prerequisites_met"] is False
    assert "empty" in signal["training"]["problems"][0]


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ({"min_new_rows": -1}, "training_trigger.min_new_rows must be an int >= 0, got -1"),
        ({"min_new_rows": "5000"}, "training_trigger.min_new_rows must be an int >= 0, got '5000'"),
        ({}, "training_trigger.min_new_rows must be an int >= 0, got None"),
    ],
)
def test_a_bad_trigger_is_named(gold, training_params, trigger, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        decide_training_trigger(INGESTION, QUALITY, trigger, *gold, **training_params)
