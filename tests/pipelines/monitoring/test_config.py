"""Bad monitoring parameters stop a node before it uses its inputs, naming the full key at fault."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from readmit_kedro.pipelines.monitoring import nodes
from readmit_kedro.run_context import ConfigError

from .conftest import RUN_DATE

# Inputs a node must never touch when its parameters are bad: using one would raise another error.
UNUSED: Any = None


def changed(block: dict, path: str, value: Any) -> dict:
    """A deep copy of ``block`` with the dotted ``path`` set to ``value``."""
    result = copy.deepcopy(block)
    *parents, key = path.split(".")
    target = result
    for parent in parents:
        target = target[parent]
    target[key] = value
    return result


def raises_naming(message: str):
    return pytest.raises(ConfigError, match=re.escape(message))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("lookback_days", 0, "monitoring_config.lookback_days must be an int >= 1, got 0"),
        ("lookback_days", 90.0, "monitoring_config.lookback_days must be an int >= 1, got 90.0"),
        ("label_maturity_days", True, "label_maturity_days must be an int >= 0, got True"),
        ("drift_threshold_psi", "0.2", "drift_threshold_psi must be a number > 0, got '0.2'"),
        ("psi_epsilon", 0, "monitoring_config.psi_epsilon must be a number in (0, 1), got 0"),
        ("missing_rate_threshold", 10, "missing_rate_threshold must be a number in (0, 1), got 10"),
        ("prediction_threshold", 1.0, "prediction_threshold must be a number in (0, 1), got 1.0"),
        ("min_samples_for_metrics", 0, "min_samples_for_metrics must be an int >= 1, got 0"),
        ("retrain_cooldown_days", -1, "retrain_cooldown_days must be an int >= 0, got -1"),
        ("concept_drift_metrics", ["roc_auc", "auc"], "concept_drift_metrics must be a list of"),
        ("bootstrap.resamples", 0, "monitoring_config.bootstrap.resamples must be an int >= 1"),
        ("bootstrap.level", 95, "monitoring_config.bootstrap.level must be a number in (0, 1)"),
        (
            "critical_performance_drop",
            0.01,
            "critical_performance_drop must be >= performance_threshold_drop (0.05), got 0.01",
        ),
        ("label_maturity_days", 90, "label_maturity_days must be < lookback_days (90)"),
        ("lookback_day", 30, "monitoring_config.lookback_day is not a parameter (known: drift"),
        ("bootstrap.resample", 100, "monitoring_config.bootstrap.resample is not a parameter"),
    ],
)
def test_a_bad_monitoring_value_is_named_before_any_input_is_used(
    config: dict, path: str, value: Any, message: str
) -> None:
    bad = changed(config, path, value)
    with raises_naming(message):
        nodes.compute_performance(UNUSED, UNUSED, UNUSED, UNUSED, RUN_DATE, bad)
    with raises_naming(message):
        nodes.compute_data_drift(UNUSED, UNUSED, UNUSED, RUN_DATE, bad)
    with raises_naming(message):
        nodes.decide_retraining(UNUSED, UNUSED, UNUSED, RUN_DATE, bad)
    with raises_naming(message):
        nodes.build_alerts(UNUSED, UNUSED, UNUSED, bad, UNUSED, UNUSED)
    with raises_naming(message):
        nodes.assemble_report(UNUSED, UNUSED, UNUSED, UNUSED, bad, UNUSED, UNUSED)
    with raises_naming(message):
        nodes.compute_feature_importance(UNUSED, UNUSED, UNUSED, UNUSED, RUN_DATE, bad)


def test_every_bad_key_is_named_in_one_error(config: dict) -> None:
    bad = changed(changed(config, "lookback_days", 0), "bootstrap.seed", -1)
    del bad["psi_epsilon"]
    with pytest.raises(ConfigError) as error:
        nodes.compute_performance(UNUSED, UNUSED, UNUSED, UNUSED, RUN_DATE, bad)
    assert str(error.value).splitlines() == [
        "invalid monitoring_config:",
        "  - monitoring_config.lookback_days must be an int >= 1, got 0",
        "  - monitoring_config.psi_epsilon must be a number in (0, 1), got None",
        "  - monitoring_config.bootstrap.seed must be an int >= 0, got -1",
    ]


def test_a_missing_block_and_a_bad_run_date_are_named(config: dict) -> None:
    with raises_naming("monitoring_config is missing"):
        nodes.compute_data_drift(UNUSED, UNUSED, UNUSED, RUN_DATE, None)
    with raises_naming("alerting is missing"):
        nodes.route_alerts(UNUSED, None)
    with raises_naming("run_date '2008-12-32' is not an ISO date"):
        nodes.compute_performance(UNUSED, UNUSED, UNUSED, UNUSED, "2008-12-32", config)
    with raises_naming("run_date 'last week' is not an ISO date"):
        nodes.decide_retraining(UNUSED, UNUSED, UNUSED, "last week", config)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("timeout_seconds", 0, "alerting.timeout_seconds must be a number > 0, got 0"),
        ("subject_prefix", None, "alerting.subject_prefix must be a string, got None"),
        ("email.sender", "", "alerting.email.sender must be an address, got ''"),
        (
            "email.recipients",
            "oncall@example.org",
            "alerting.email.recipients must be a list of addresses",
        ),
        (
            "routing.warning",
            ["slack"],
            "alerting.routing.warning must be null or a list of channels (webhook, email), "
            "got ['slack']",
        ),
        ("email.smtp_host", "smtp.example.org", "alerting.email.smtp_host is not a parameter"),
        ("timeout", 5, "alerting.timeout is not a parameter (known: subject_prefix,"),
        ("routing.page", ["webhook"], "alerting.routing.page is not a severity"),
        # A channel secret left in parameters (the old layout) is refused, never silently ignored.
        (
            "channels",
            {"webhook": {"url": "https://hooks.example.org/services/T0/B0/x"}},
            "alerting.channels is not a parameter any more: channel secrets are Kedro credentials",
        ),
    ],
)
def test_a_bad_alerting_value_is_named(params: dict, path: str, value: Any, message: str) -> None:
    """The routing node stops (so its output dataset never sends) and names the key at fault."""
    bad = changed(params["alerting"], path, value)
    alerts = {
        "run_date": RUN_DATE,
        "alerts": [{"severity": "critical", "title": "t", "message": "m"}],
    }
    with raises_naming(message):
        nodes.route_alerts(alerts, bad)


def test_the_shipped_parameters_are_valid_and_reported_as_configured(params: dict) -> None:
    """The base parameters parse, and the report's thresholds are the configured values."""
    from readmit_kedro.pipelines.monitoring.config import AlertingConfig, MonitoringConfig

    config = params["monitoring_config"]
    settings = MonitoringConfig.parse(config)
    keys = [
        "drift_threshold_psi", "performance_threshold_drop", "critical_performance_drop",
        "significance_guard", "concept_drift_metrics", "min_samples_for_metrics", "label_maturity_days",
        "lookback_days", "missing_rate_threshold", "psi_epsilon", "prediction_threshold",
        "importance",
    ]  # fmt: skip
    assert settings.thresholds() == {key: config[key] for key in keys}
    assert list(settings.thresholds()) == keys
    alerting = AlertingConfig.parse(params["alerting"])
    assert alerting.recipients == ()  # no mail until an env sets recipients (and credentials)
    assert alerting.routes == {
        ("critical", "webhook"), ("critical", "email"), ("warning", "webhook"), ("info", "email"),
    }  # fmt: skip
