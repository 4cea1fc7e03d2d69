"""Patient-clustered bootstrap intervals of ROC AUC and PR AUC (``bootstrap_intervals``)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm
from sklearn.metrics import average_precision_score, roc_auc_score

from readmit_kedro.model.metrics import (
    _weighted_ranking_metrics,
    bootstrap_intervals,
)

METRICS = ("roc_auc", "pr_auc")


def binormal(n: int, seed: int, separation: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """Labels at a 30% base rate; scores N(0, 1) for negatives, N(separation, 1) for positives.

    The population ROC AUC is Phi(separation / sqrt(2)) (0.714 for 0.8).
    """
    rng = np.random.default_rng(seed)
    y = (rng.uniform(size=n) < 0.3).astype(int)
    return y, rng.normal(size=n) + separation * y


def test_the_interval_contains_the_estimate() -> None:
    y, score = binormal(1_000, seed=1)
    groups = np.random.default_rng(2).integers(0, 700, len(y))  # some patients with 2+ rows
    result = bootstrap_intervals(y, score, groups, resamples=100, level=0.9)
    assert result["level"] == 0.9 and result["resamples_used"] == 100
    assert "patient-clustered" in result["method"]
    assert result["roc_auc"]["estimate"] == pytest.approx(roc_auc_score(y, score))
    assert result["pr_auc"]["estimate"] == pytest.approx(average_precision_score(y, score))
    for name in METRICS:
        entry = result[name]
        assert entry["low"] < entry["estimate"] < entry["high"], name
        assert 0 < entry["se"] < entry["high"] - entry["low"], name  # 90%: about 3.3 SE wide


def test_duplicated_patients_widen_the_interval_as_if_they_were_one_row() -> None:
    """Each patient's row repeated 4 times carries no more information than the row itself.

    Clustered by patient, the bootstrap draws exactly what it draws on the one-row-per-patient data
    (same patients, same seed), so the intervals are equal; treating every row as its own patient
    (a row-level bootstrap) shrinks the standard error by about sqrt(4) = 2.
    """
    y, score = binormal(300, seed=3)
    patients = np.arange(len(y))
    k = 4
    y_rep, score_rep, patients_rep = (np.repeat(a, k) for a in (y, score, patients))

    once = bootstrap_intervals(y, score, patients, resamples=60)
    clustered = bootstrap_intervals(y_rep, score_rep, patients_rep, resamples=60)
    row_level = bootstrap_intervals(y_rep, score_rep, np.arange(len(y_rep)), resamples=60)

    for name in METRICS:
        for key in ("estimate", "low", "high", "se"):
            assert clustered[name][key] == pytest.approx(once[name][key]), (name, key)
        assert clustered[name]["se"] > 1.5 * row_level[name]["se"], name
        row_width = row_level[name]["high"] - row_level[name]["low"]
        assert clustered[name]["high"] - clustered[name]["low"] > 1.5 * row_width, name


def test_a_fixed_seed_gives_the_same_intervals_and_another_seed_does_not() -> None:
    y, score = binormal(400, seed=4)
    groups = np.arange(len(y)) // 2
    first = bootstrap_intervals(y, score, groups, resamples=50, seed=7)
    assert bootstrap_intervals(y, score, groups, resamples=50, seed=7) == first
    other = bootstrap_intervals(y, score, groups, resamples=50, seed=8)
    assert other["roc_auc"]["estimate"] == first["roc_auc"]["estimate"]
    assert (other["roc_auc"]["low"], other["roc_auc"]["high"]) != (
        first["roc_auc"]["low"],
        first["roc_auc"]["high"],
    )


def test_a_lower_level_gives_a_nested_interval() -> None:
    y, score = binormal(400, seed=5)
    groups = np.arange(len(y))
    wide = bootstrap_intervals(y, score, groups, resamples=50, level=0.95)
    narrow = bootstrap_intervals(y, score, groups, resamples=50, level=0.8)
    for name in METRICS:
        assert wide[name]["low"] < narrow[name]["low"] < narrow[name]["high"] < wide[name]["high"]


def test_resamples_that_draw_a_single_class_are_skipped_and_counted() -> None:
    """One positive patient among 20: about a third of the resamples miss them entirely."""
    y = np.zeros(20, dtype=int)
    y[0] = 1
    score = np.linspace(1.0, 0.0, 20)
    result = bootstrap_intervals(y, score, np.arange(20), resamples=60, seed=0)
    assert 20 < result["resamples_used"] < 60
    assert result["roc_auc"]["high"] <= 1.0


@pytest.mark.slow
def test_clustered_intervals_cover_the_true_auc_when_patients_repeat() -> None:
    """Coverage sanity on a world where the true ROC AUC is known, each patient seen 3 times.

    Twelve independent samples of 150 patients: a 95% interval should miss the true AUC at most
    once or twice (4+ misses: probability 0.2% if the coverage really were 95%). A row-level
    bootstrap is about sqrt(3) too narrow here (see the duplicated-patients test above).
    """
    true_auc = norm.cdf(0.8 / np.sqrt(2))
    patients = np.repeat(np.arange(150), 3)
    misses = 0
    for seed in range(12):
        y, score = binormal(150, seed=100 + seed, separation=0.8)
        result = bootstrap_intervals(
            y[patients], score[patients], patients, resamples=40, seed=seed
        )
        misses += not result["roc_auc"]["low"] <= true_auc <= result["roc_auc"]["high"]
    assert misses <= 3


def test_resampled_metrics_equal_scikit_learns_with_weights_and_ties():
    """The one-pass ROC AUC / average precision match scikit-learn's weighted ones exactly."""
    rng = np.random.default_rng(5)
    y = (rng.random(3000) < 0.15).astype(int)
    scores = np.round(rng.random(3000) + 0.3 * y, 2)  # rounded: many tied scores
    weight = rng.integers(0, 4, 3000).astype(float)
    _, level = np.unique(-scores, return_inverse=True)
    roc_auc, pr_auc = _weighted_ranking_metrics(
        np.bincount(level, weight * y), np.bincount(level, weight * (1 - y))
    )
    assert roc_auc == pytest.approx(roc_auc_score(y, scores, sample_weight=weight), abs=1e-12)
    assert pr_auc == pytest.approx(
        average_precision_score(y, scores, sample_weight=weight), abs=1e-12
    )
