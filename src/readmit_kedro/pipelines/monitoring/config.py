"""Monitoring's parameters, checked into frozen values by each node that receives them, first.

``monitoring_config`` and ``alerting`` (conf/base/parameters_monitoring.yml, soft-merged per env)
were read as plain dicts, so a bad value surfaced late or never: ``lookback_days: 0`` gave an
empty window and "not available" metrics, a routing typo silently sent nothing. Now a node parses
the block before it touches its inputs, and :class:`~readmit_kedro.run_context.ConfigError` names
every key at fault (``monitoring_config.lookback_days must be an int >= 1, got 0``). Valid values
are kept exactly as configured, so a valid configuration behaves as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from readmit_kedro.model.reference_profile import CHAMPION_METRICS
from readmit_kedro.run_context import Problems, is_int, is_number, is_probability

SEVERITIES: tuple[str, ...] = ("critical", "warning", "info")
# Metrics with a bootstrap interval (model.metrics.bootstrap_intervals): the significance guard.
INTERVAL_METRICS: tuple[str, ...] = ("roc_auc", "pr_auc")
CHANNELS: tuple[str, ...] = ("webhook", "email")

_IN_0_1 = "must be a number in (0, 1)"
_Rules = dict[str, tuple[Callable[[Any], bool], str]]  # key: (check, requirement)


def _positive(value: Any) -> bool:
    return is_number()(value) and value > 0


def _names(allowed: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, list) and all(name in allowed for name in v)


def _text_list(value: Any) -> bool:
    return value is None or (isinstance(value, list) and all(isinstance(v, str) for v in value))


# In the order of conf/base/parameters_monitoring.yml, so problems are listed in that order.
_MONITORING_RULES: _Rules = {
    "drift_threshold_psi": (_positive, "must be a number > 0"),
    "performance_threshold_drop": (is_probability, _IN_0_1),
    "critical_performance_drop": (is_probability, _IN_0_1),
    "significance_guard": (lambda v: isinstance(v, bool), "must be true or false"),
    "concept_drift_metrics": (
        _names(CHAMPION_METRICS),
        f"must be a list of champion metrics ({', '.join(CHAMPION_METRICS)})",
    ),
    "min_samples_for_metrics": (is_int(1), "must be an int >= 1"),
    "label_maturity_days": (is_int(0), "must be an int >= 0"),
    "lookback_days": (is_int(1), "must be an int >= 1"),
    "missing_rate_threshold": (is_probability, _IN_0_1),
    "psi_epsilon": (is_probability, _IN_0_1),
    "prediction_threshold": (is_probability, _IN_0_1),
    "retrain_cooldown_days": (is_int(0), "must be an int >= 0"),
}
_BOOTSTRAP_RULES: _Rules = {
    "resamples": (is_int(1), "must be an int >= 1"),
    "level": (is_probability, _IN_0_1),
    "seed": (is_int(0), "must be an int >= 0"),
}
_IMPORTANCE_RULES: _Rules = {
    "period_days": (is_int(1), "must be an int >= 1"),
    "top_features": (is_int(1), "must be an int >= 1"),
    "min_rank_shift": (is_int(1), "must be an int >= 1"),
    "max_rows_per_period": (is_int(1), "must be an int >= 1"),
    "seed": (is_int(0), "must be an int >= 0"),
}
_EMAIL_RULES: _Rules = {
    "sender": (lambda v: isinstance(v, str) and bool(v), "must be an address"),
    "recipients": (_text_list, "must be a list of addresses"),
}
_ALERTING_RULES: _Rules = {
    "subject_prefix": (lambda v: isinstance(v, str), "must be a string"),
    "timeout_seconds": (_positive, "must be a number > 0"),
}
# Keys that were parameters once, with where they went (a clearer error than "not a parameter").
_ALERTING_RETIRED = {
    "channels": "channel secrets are Kedro credentials (readmit_alerts, "
    "conf/<env>/credentials.yml)",
}


def _checked(
    problems: Problems,
    rules: _Rules,
    *,
    other: tuple[str, ...] = (),
    retired: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The value of each key of ``rules``, each checked (a failure is recorded in ``problems``).

    A key that is neither in ``rules`` nor in ``other`` (checked by the caller) is a problem too: a
    misspelt override in conf/<env> would otherwise leave the base value in force, silently. A
    ``retired`` key says where its setting went.
    """
    if problems.messages:  # the block is missing (said once, not once per key)
        return dict.fromkeys(rules)
    for key in problems.config:
        if key in (retired or {}):
            problems.add(f"{key} is not a parameter any more: {retired[key]}")
        elif key not in rules and key not in other:
            problems.add(f"{key} is not a parameter (known: {', '.join([*rules, *other])})")
    return {
        key: problems.check(key, valid, requirement) for key, (valid, requirement) in rules.items()
    }


@dataclass(frozen=True)
class Bootstrap:
    """``monitoring_config.bootstrap``: the patient-clustered interval of ROC AUC and PR AUC."""

    resamples: int
    level: float
    seed: int


@dataclass(frozen=True)
class Importance:
    """``monitoring_config.importance``: global SHAP importance month by month, and its alert."""

    period_days: int
    top_features: int
    min_rank_shift: int
    max_rows_per_period: int
    seed: int


@dataclass(frozen=True)
class MonitoringConfig:
    """``monitoring_config``, validated (see conf/base/parameters_monitoring.yml for meanings)."""

    drift_threshold_psi: float
    performance_threshold_drop: float
    critical_performance_drop: float
    significance_guard: bool
    concept_drift_metrics: tuple[str, ...]
    min_samples_for_metrics: int
    label_maturity_days: int
    lookback_days: int
    missing_rate_threshold: float
    psi_epsilon: float
    prediction_threshold: float
    retrain_cooldown_days: int
    bootstrap: Bootstrap
    importance: Importance

    @classmethod
    def parse(cls, config: Any) -> MonitoringConfig:
        """``params:monitoring_config`` as a :class:`MonitoringConfig`; ConfigError if not valid."""
        problems = Problems("monitoring_config", config)
        problems.raise_if_any()  # the block itself is missing: nothing else to say
        values = _checked(problems, _MONITORING_RULES, other=("bootstrap", "importance"))
        drop, critical = values["performance_threshold_drop"], values["critical_performance_drop"]
        if is_probability(drop) and is_probability(critical) and critical < drop:
            problems.add(
                f"critical_performance_drop must be >= performance_threshold_drop ({drop}), "
                f"got {critical!r}"
            )
        guarded = values["concept_drift_metrics"]
        if values["significance_guard"] is True and isinstance(guarded, list):
            unguardable = [m for m in guarded if m not in INTERVAL_METRICS]
            if unguardable:
                problems.add(
                    f"concept_drift_metrics {unguardable} have no bootstrap interval, so "
                    f"significance_guard cannot apply (guarded: {', '.join(INTERVAL_METRICS)})"
                )
        maturity, lookback = values["label_maturity_days"], values["lookback_days"]
        if is_int(0)(maturity) and is_int(1)(lookback) and maturity >= lookback:
            problems.add(
                f"label_maturity_days must be < lookback_days ({lookback}): no label in the window "
                f"would ever be mature, got {maturity!r}"
            )
        bootstrap = Problems("monitoring_config.bootstrap", problems.config.get("bootstrap"))
        resampling = _checked(bootstrap, _BOOTSTRAP_RULES)
        importance = Problems("monitoring_config.importance", problems.config.get("importance"))
        ranking = _checked(importance, _IMPORTANCE_RULES)
        period, lookback = ranking["period_days"], values["lookback_days"]
        if is_int(1)(period) and is_int(1)(lookback) and 2 * period > lookback:
            importance.add(
                f"period_days must be at most half of lookback_days ({lookback}): the ranking "
                f"compares the window's last two periods, got {period!r}"
            )
        problems.messages += bootstrap.messages + importance.messages
        problems.raise_if_any()
        values["concept_drift_metrics"] = tuple(values["concept_drift_metrics"])
        return cls(**values, bootstrap=Bootstrap(**resampling), importance=Importance(**ranking))

    def thresholds(self) -> dict[str, Any]:
        """The thresholds the report shows, as configured."""
        return {
            "drift_threshold_psi": self.drift_threshold_psi,
            "performance_threshold_drop": self.performance_threshold_drop,
            "critical_performance_drop": self.critical_performance_drop,
            "significance_guard": self.significance_guard,
            "concept_drift_metrics": list(self.concept_drift_metrics),
            "min_samples_for_metrics": self.min_samples_for_metrics,
            "label_maturity_days": self.label_maturity_days,
            "lookback_days": self.lookback_days,
            "missing_rate_threshold": self.missing_rate_threshold,
            "psi_epsilon": self.psi_epsilon,
            "prediction_threshold": self.prediction_threshold,
            "importance": {
                "period_days": self.importance.period_days,
                "top_features": self.importance.top_features,
                "min_rank_shift": self.importance.min_rank_shift,
                "max_rows_per_period": self.importance.max_rows_per_period,
                "seed": self.importance.seed,
            },
        }


@dataclass(frozen=True)
class AlertingConfig:
    """``alerting``, validated: which severities each channel receives, and how messages look.

    Where a channel sends (the webhook URL, the SMTP relay and its login) is a secret: credentials
    ``readmit_alerts``, read by :class:`~readmit_kedro.io.alert_delivery.AlertDeliveryDataset`.
    """

    subject_prefix: str
    timeout_seconds: float
    sender: str
    recipients: tuple[str, ...]
    routes: frozenset[tuple[str, str]]  # (severity, channel) pairs

    @classmethod
    def parse(cls, config: Any) -> AlertingConfig:
        """``params:alerting`` as an :class:`AlertingConfig`; ConfigError if not valid."""
        problems = Problems("alerting", config)
        problems.raise_if_any()  # the block itself is missing: nothing else to say
        values = _checked(
            problems, _ALERTING_RULES, other=("email", "routing"), retired=_ALERTING_RETIRED
        )
        mail = Problems("alerting.email", problems.config.get("email"))
        email = _checked(mail, _EMAIL_RULES)
        routing = Problems("alerting.routing", problems.config.get("routing"))
        routes = set()
        for severity, targets in routing.config.items():
            if severity not in SEVERITIES:
                routing.add(f"{severity} is not a severity ({', '.join(SEVERITIES)})")
            elif targets is not None and not _names(CHANNELS)(targets):
                routing.add(
                    f"{severity} must be null or a list of channels ({', '.join(CHANNELS)}), "
                    f"got {targets!r}"
                )
            else:
                routes |= {(severity, channel) for channel in targets or ()}
        for part in (mail, routing):
            problems.messages += part.messages
        problems.raise_if_any()
        recipients = tuple(email["recipients"] or ())
        return cls(
            values["subject_prefix"],
            values["timeout_seconds"],
            email["sender"],
            recipients,
            frozenset(routes),
        )
