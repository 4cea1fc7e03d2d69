"""The calibrator on synthetic worlds where every patient's true readmission probability is known.

Scores are a distortion of the truth: shifted log-odds (what class weighting does) and a steeper
slope (over-confidence), or a non-logistic bend. A calibrator that recovers the truth must lower
the calibration error, and its 90% interval must cover the true probability about 90% of the
time over repeated calibration samples.
"""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from readmit_kedro.model.calibration import CalibratedModel, SplineCalibrator, calibrate
from readmit_kedro.model.metrics import (
    expected_calibration_error,
)

DISTORTIONS = {
    "class-weighted, over-confident": lambda true_logit: expit(1.4 * true_logit + 2.0),
    "bent": lambda true_logit: np.sqrt(expit(true_logit)),
}


def world(n: int, seed: int, distort) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(true probability, model score, label)`` of ``n`` patients; ~13% are readmitted."""
    rng = np.random.default_rng(seed)
    true_logit = rng.normal(-2.2, 1.0, n)
    truth = expit(true_logit)
    return truth, distort(true_logit), (rng.uniform(size=n) < truth).astype(int)


@pytest.mark.parametrize("distortion", DISTORTIONS)
def test_calibration_error_drops_on_a_miscalibrated_scorer(distortion):
    _, scores, labels = world(20_000, seed=1, distort=DISTORTIONS[distortion])
    _, new_scores, new_labels = world(20_000, seed=2, distort=DISTORTIONS[distortion])
    calibrator = SplineCalibrator().fit(scores, labels)
    before = expected_calibration_error(new_labels, new_scores)
    after = expected_calibration_error(new_labels, calibrator.predict(new_scores))
    assert before > 0.1  # the scorer really is mis-calibrated
    assert after < 0.01 and after < before / 10


@pytest.mark.parametrize("distortion", DISTORTIONS)
def test_the_90_percent_interval_covers_the_true_probability_about_90_percent(distortion):
    """Coverage at fixed patients over 100 independent calibration samples of 3,000 rows."""
    distort = DISTORTIONS[distortion]
    true_logits = np.linspace(-4.2, -0.2, 40)  # about the 2nd to 98th percentile of patients
    truth = expit(true_logits)
    covered = np.zeros(len(truth))
    for seed in range(100):
        _, scores, labels = world(3_000, seed=seed, distort=distort)
        lower, upper = (
            SplineCalibrator(level=0.9).fit(scores, labels).predict_interval(distort(true_logits))
        )
        covered += (lower <= truth) & (truth <= upper)
    coverage = covered / 100
    assert 0.85 <= coverage.mean() <= 0.95
    assert coverage.min() >= 0.75  # no stretch of the risk range is badly under-covered


def test_the_interval_brackets_the_probability_and_narrows_with_more_data():
    distort = DISTORTIONS["class-weighted, over-confident"]
    _, new_scores, _ = world(1_000, seed=3, distort=distort)
    widths = []
    for n in (2_000, 20_000):
        _, scores, labels = world(n, seed=4, distort=distort)
        proba, lower, upper = (
            SplineCalibrator().fit(scores, labels).predict_with_interval(new_scores)
        )
        assert (lower < proba).all() and (proba < upper).all()
        widths.append(np.median(upper - lower))
    assert widths[1] < widths[0] / 2  # ~1/sqrt(n): 10x the rows, about a third of the width


def test_the_calibrated_map_never_reorders_patients():
    """A wiggly truth would tempt a flexible fit into decreasing stretches; knots are dropped."""
    rng = np.random.default_rng(5)
    scores = rng.uniform(0.01, 0.99, 5_000)
    truth = np.clip(0.1 + 0.5 * scores + 0.15 * np.sin(12 * scores), 0.01, 0.99)
    labels = (rng.uniform(size=5_000) < truth).astype(int)
    calibrator = SplineCalibrator().fit(scores, labels)
    grid = np.linspace(0.0, 1.0, 2_001)
    assert np.all(np.diff(calibrator.predict(grid)) >= 0)
    assert len(calibrator.knots_) < 5


def test_coarse_tied_scores_are_calibrated():
    """Random forests give few distinct scores, many exactly 0: quantile knots collapse."""
    rng = np.random.default_rng(6)
    scores = rng.choice([0.0, 0.0, 0.0, 0.2, 0.4, 1.0], 4_000)
    labels = (rng.uniform(size=4_000) < 0.05 + 0.3 * scores).astype(int)
    proba = SplineCalibrator().fit(scores, labels).predict(np.array([0.0, 0.4, 1.0]))
    assert np.all(np.diff(proba) > 0) and proba[0] == pytest.approx(0.05, abs=0.02)


def test_fit_refuses_what_cannot_be_calibrated():
    scores = np.linspace(0.01, 0.99, 500)
    with pytest.raises(ValueError, match="at least 20 rows of each class"):
        SplineCalibrator().fit(scores, (scores > 0.97).astype(int))
    with pytest.raises(ValueError, match="labels 0/1"):
        SplineCalibrator().fit(scores, np.full(500, 2))
    with pytest.raises(ValueError, match="nothing to calibrate"):
        SplineCalibrator().fit(np.full(500, 0.3), (scores > 0.5).astype(int))
    reversed_labels = (np.random.default_rng(9).uniform(size=500) < 1 - scores).astype(int)
    with pytest.raises(ValueError, match="do not rank these labels"):
        SplineCalibrator().fit(scores, reversed_labels)


def test_calibrated_model_wraps_a_fitted_bundle_and_pickles():
    rng = np.random.default_rng(7)
    X = pd.DataFrame({"a": rng.normal(size=4_000), "b": rng.normal(size=4_000)})
    y = (rng.uniform(size=4_000) < expit(-2 + X["a"].to_numpy())).astype(int)
    bundle = make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced"))
    bundle.fit(X[:2_000], y[:2_000])
    model = calibrate(bundle, X[2_000:], y[2_000:])

    assert isinstance(model, CalibratedModel)
    assert model.feature_columns == ["a", "b"] and model.interval_level == 0.9
    assert list(model.classes_) == [0, 1]
    proba = model.predict_proba(X)
    assert proba.shape == (4_000, 2) and np.allclose(proba.sum(axis=1), 1.0)
    # class weighting inflated the raw scores; the calibrated mean is back near the real rate
    assert bundle.predict_proba(X)[:, 1].mean() > 0.3
    assert proba[:, 1].mean() == pytest.approx(y.mean(), abs=0.02)
    p, lower, upper = model.predict_with_interval(X)
    np.testing.assert_array_equal(p, proba[:, 1])
    np.testing.assert_array_equal(np.column_stack(model.predict_interval(X)), np.c_[lower, upper])
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.predict_with_interval(X), (p, lower, upper))


def test_scores_outside_the_calibration_range_extrapolate_monotonically():
    _, scores, labels = world(5_000, seed=8, distort=DISTORTIONS["class-weighted, over-confident"])
    calibrator = SplineCalibrator().fit(scores, labels)
    edge = np.array([0.0, scores.min() / 10, scores.min(), scores.max(), 1.0])
    proba, lower, upper = calibrator.predict_with_interval(edge)
    assert np.all(np.diff(proba) >= 0) and np.all((lower <= proba) & (proba <= upper))
    log_odds_width = logit(upper) - logit(lower)
    assert log_odds_width[1] > log_odds_width[2]  # less is known far outside the data
