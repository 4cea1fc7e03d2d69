"""The signal data processing writes for the Airflow gates: new rows, and training's prerequisites."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from readmit_kedro.pipelines.data_processing.trigger import decide_training_trigger
from readmit_kedro.pipelines.training.checks import check_training_data
from readmit_kedro.pipelines.training.config import validate_training_config
from readmit_kedro.pipelines.training.modeling import ESTIMATORS
from readmit_kedro.run_context import ConfigError
from tests.pipelines.training.conftest import load_project_config
from tests.support.gold import make_gold_like, window_inputs

INGESTION = {"run_date": "2008-12-31", "new_extracts": ["x"], "new_rows": 5000}
QUALITY = {"model_population": 10}


@pytest.fixture(scope="module")
def training_params() -> dict:
    params = load_project_config("dev", "parameters")
    keys = ("temporal_splits", "model_config", "training_config", *ESTIMATORS)
    return {"run_date": INGESTION["run_date"], **{key: params[key] for key in keys}}


@pytest.fixture(scope="module")
def stores():
    return make_gold_like(4000, seed=7)


@pytest.fixture(scope="module")
def gold(stores):
    return window_inputs(*stores)


def _signal(gold, training_params, new_rows=5000, trigger=None, counted=None, **overrides):
    return _run(gold, training_params, new_rows, trigger, counted, **overrides)[0]


def _run(gold, training_params, new_rows=5000, trigger=None, counted=None, **overrides):
    """The trigger node's outputs: the signal, and the window counts it carries to the next run."""
    return decide_training_trigger(
        {**INGESTION, "new_rows": new_rows},
        QUALITY,
        trigger or {"min_new_rows": 5000},
        *gold,
        pd.DataFrame() if counted is None else counted,
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
    report = check_training_data(*gold, plan, training_params["training_config"], {}, None)
    assert training["partitions"] == report["partitions"] == list(range(1999, 2009))
    assert training["rows"] == report["rows"] and training["positives"] == report["positives"]
    assert training["inputs_sha256"] == report["inputs_sha256"]
    assert training["problems"] == [] and training["algorithms"] == plan["algorithms"]
    assert training["windows"] == plan["windows"]


def test_missing_prerequisites_close_both_gates_with_every_reason(stores, training_params):
    features, labels = stores
    keep = features["admission_year"] >= 2001
    signal = _signal(window_inputs(features[keep], labels[keep]), training_params, 90000)
    training = signal["training"]
    assert signal["train_recommended"] is False and training["prerequisites_met"] is False
    assert "8 admission_year partitions up to 2008" in signal["reason"]
    assert training["partitions"] == list(range(2001, 2009))


def test_an_empty_gold_is_a_problem_not_a_crash(stores, training_params):
    features, labels = stores
    signal, counted = _run(window_inputs(features.head(0), labels.head(0)), training_params)
    assert signal["training"]["prerequisites_met"] is False
    assert "empty" in signal["training"]["problems"][0]
    assert counted.empty


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
        decide_training_trigger(
            INGESTION, QUALITY, trigger, *gold, pd.DataFrame(), **training_params
        )


def _counting_reads(gold, read: list[str]):
    """``gold`` whose partition loaders note the months they read in ``read``."""

    def noted(month, loader):
        def load():
            read.append(month)
            return loader()

        return load

    features, labels, *digests = gold
    return (
        {month: noted(month, loader) for month, loader in features.items()},
        {month: noted(month, loader) for month, loader in labels.items()},
        *digests,
    )


def test_carried_counts_give_the_signal_of_counting_gold_whole(stores, training_params):
    """Gold grows, an old month is corrected, a month is withdrawn: the counts carried from run
    to run give every run_date the signal a count of gold whole gives, reading only the months
    whose digests changed."""
    features, labels = stores
    month = features["admission_date"].dt.strftime("%Y-%m")
    corrected = labels.copy()
    old = (month == "2003-05").to_numpy()
    corrected.loc[old, "readmitted_30d"] = 1 - corrected.loc[old, "readmitted_30d"]
    kept = (month != "2004-02").to_numpy()
    upto_2006, upto_2007 = (month <= "2006-12").to_numpy(), (month <= "2007-12").to_numpy()
    runs = [  # (gold, run_date, the months the run must read)
        ((features[upto_2006], labels[upto_2006]), "2008-12-31", set(month[upto_2006])),
        ((features[upto_2007], labels[upto_2007]), "2008-12-31", {f"2007-{m:02}" for m in range(1, 13)}),
        ((features, labels), "2008-12-31", {f"2008-{m:02}" for m in range(1, 13)}),
        ((features, corrected), "2009-06-30", {"2003-05"}),
        ((features[kept], corrected[kept]), "2009-06-30", set()),
    ]  # fmt: skip
    counted = None
    for stores_now, run_date, months_read in runs:
        read: list[str] = []
        gold = window_inputs(*stores_now)
        signal, counted = _run(
            _counting_reads(gold, read), training_params, counted=counted, run_date=run_date
        )
        assert sorted(read) == sorted([*months_read, *months_read])  # both stores of each
        assert signal == _signal(gold, training_params, run_date=run_date)
        assert sorted(counted["month"].unique()) == sorted(gold[0])
    uncorrected = window_inputs(features[kept], labels[kept])
    uncorrected = _signal(uncorrected, training_params, run_date="2009-06-30")["training"]
    assert signal["training"]["positives"]["train"] != uncorrected["positives"]["train"]
