"""The replay summary's model lines: ROC AUC with its bootstrap interval, bare for old records."""

from __future__ import annotations

from readmit_kedro.commands.replay import _metric


def test_a_metric_is_shown_with_its_interval_when_the_record_has_one() -> None:
    interval = {"estimate": 0.6684, "low": 0.6561, "high": 0.6792, "se": 0.006}
    metrics = {
        "test": {"roc_auc": 0.6684, "intervals": {"level": 0.95, "roc_auc": interval}},
        "oot": {"roc_auc": 0.6512},  # registered before intervals existed
    }
    assert _metric(metrics, "test", "roc_auc") == "0.668 [0.656, 0.679]"
    assert _metric(metrics, "oot", "roc_auc") == "0.651"
    assert _metric(metrics, "test", "pr_auc") == "n/a"
    assert _metric({"test_roc_auc": 0.7}, "test", "roc_auc") == "0.700"  # flat, older layout
