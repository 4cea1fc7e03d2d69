"""The "enough new data?" signal for the training DAG."""

from __future__ import annotations

import re

import pytest

from readmit_kedro.pipelines.data_processing.trigger import decide_training_trigger
from readmit_kedro.run_context import ConfigError

INGESTION = {"run_date": "2008-01-31", "new_extracts": ["x"], "new_rows": 5000}


@pytest.mark.parametrize(("new_rows", "expected"), [(4999, False), (5000, True)])
def test_training_trigger(new_rows, expected):
    signal = decide_training_trigger(
        {**INGESTION, "new_rows": new_rows}, {"model_population": 10}, {"min_new_rows": 5000}
    )
    assert signal["train_recommended"] is expected and str(new_rows) in signal["reason"]


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ({"min_new_rows": -1}, "training_trigger.min_new_rows must be an int >= 0, got -1"),
        ({"min_new_rows": "5000"}, "training_trigger.min_new_rows must be an int >= 0, got '5000'"),
        ({}, "training_trigger.min_new_rows must be an int >= 0, got None"),
    ],
)
def test_a_bad_trigger_is_named(trigger, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        decide_training_trigger(INGESTION, {"model_population": 10}, trigger)
