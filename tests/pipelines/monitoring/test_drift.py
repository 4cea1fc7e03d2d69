"""Data drift: injected drift is found exactly where injected, PSI matches the textbook formula."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from readmit_kedro.model.reference_profile import CHAMPION_METRICS, build_reference_profile
from readmit_kedro.pipelines.monitoring.drift import missing_rate_check
from readmit_kedro.pipelines.monitoring.nodes import compute_data_drift, decide_retraining

from .conftest import RUN_DATE, make_features, make_world, true_scores

SHIFTED = {"num_lab_procedures", "admission_type"}
NO_CONCEPT_CHECK = {"concept_drift": {"breaches": []}}


def textbook_psi(expected: pd.Series, actual: pd.Series, epsilon: float) -> float:
    """PSI as in Siddiqi (2006), written independently of the project code with pandas.

    Numeric: decile bins of the expected sample (``pd.qcut``), outer edges opened to infinity;
    categorical: one bin per category. PSI = sum((A - E) * ln(A / E)), shares floored at epsilon.
    """
    if pd.api.types.is_numeric_dtype(expected):
        _, edges = pd.qcut(expected.dropna(), q=10, retbins=True, duplicates="drop")
        edges[0], edges[-1] = -np.inf, np.inf
        e = pd.cut(expected.dropna(), edges).value_counts(normalize=True, sort=False)
        a = pd.cut(actual.dropna(), edges).value_counts(normalize=True, sort=False)
    else:
        e, a = expected.value_counts(normalize=True), actual.value_counts(normalize=True)
        e, a = e.align(a, fill_value=0.0)
    e, a = e.clip(lower=epsilon), a.clip(lower=epsilon)
    return float(((a - e) * np.log(a / e)).sum())


def inject_drift(features: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    """Shift one numeric feature by about one standard deviation; change one categorical mix."""
    rng = np.random.default_rng(seed)
    drifted = features.copy()
    drifted["num_lab_procedures"] += 20
    drifted["admission_type"] = rng.choice(
        ["Emergency", "Urgent", "Elective", "Missing"], len(drifted), p=[0.25, 0.30, 0.35, 0.10]
    )
    return drifted


@pytest.fixture(scope="module")
def world() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return make_world(20_000, seed=5)


def test_no_drift_flags_nothing(world, reference_profile: dict, config: dict) -> None:
    features, _, predictions = world
    drift = compute_data_drift(predictions, features, reference_profile, RUN_DATE, config)
    assert drift["available"]
    assert drift["encounters_with_features"] == 20_000
    assert drift["drifted_features"] == []
    assert drift["missing_rate_breaches"] == []
    assert not drift["score"]["drift"]
    assert max(e["psi"] for e in drift["features"].values()) < 0.02  # sampling noise only
    signal = decide_retraining(NO_CONCEPT_CHECK, drift, reference_profile, RUN_DATE, config)
    assert signal == {
        "run_date": RUN_DATE,
        "retrain_recommended": False,
        "reasons": [],
        "last_training_run_date": None,
        "cooldown": None,
    }


def test_injected_drift_flags_exactly_the_shifted_features(
    world, reference_profile: dict, config: dict
) -> None:
    features, _, predictions = world
    drift = compute_data_drift(
        predictions, inject_drift(features), reference_profile, RUN_DATE, config
    )
    assert set(drift["drifted_features"]) == SHIFTED
    assert not drift["score"]["drift"]  # the score does not depend on the shifted features
    assert drift["missing_rate_breaches"] == []
    signal = decide_retraining(NO_CONCEPT_CHECK, drift, reference_profile, RUN_DATE, config)
    assert signal["retrain_recommended"]
    assert len(signal["reasons"]) == 2

    # The same drift soon after a training run is reported, but training is not re-triggered.
    cooldown = config["retrain_cooldown_days"]
    for days_ago, expected in ((cooldown - 1, False), (cooldown, True)):
        trained = (pd.Timestamp(RUN_DATE) - pd.Timedelta(days=days_ago)).date().isoformat()
        recent = {**reference_profile, "champion": {"training_run_date": trained}}
        later = decide_retraining(NO_CONCEPT_CHECK, drift, recent, RUN_DATE, config)
        assert later["retrain_recommended"] is expected
        assert later["reasons"] == signal["reasons"] and later["last_training_run_date"] == trained
        assert (later["cooldown"] is None) is expected
    for name in SHIFTED:
        psi = drift["features"][name]["psi"]
        assert any(f"PSI of feature {name} {psi:.3f} > 0.2" in r for r in signal["reasons"])


@pytest.fixture(scope="module")
def reference_sample(params: dict) -> tuple[pd.DataFrame, dict]:
    """A train window and the profile built from it, for the textbook comparison."""
    reference = make_features(20_000, seed=11, end="2005-12-31", days=2000)
    profile = build_reference_profile(
        reference,
        true_scores(reference),
        dict.fromkeys(CHAMPION_METRICS, 0.5),
        params["reference_profile_config"],
    )
    return reference, profile


@pytest.mark.parametrize("drifted", [False, True], ids=["same", "shifted"])
@pytest.mark.parametrize(
    "feature",
    ["num_lab_procedures", "num_medications", "number_diagnoses", "admission_type", "insulin"],
)
def test_psi_matches_the_textbook_formula(
    world, reference_sample, config: dict, feature: str, drifted: bool
) -> None:
    """Against an independent implementation on the same reference and current samples."""
    reference, profile = reference_sample
    features, _, predictions = world
    current = inject_drift(features) if drifted else features
    drift = compute_data_drift(predictions, current, profile, RUN_DATE, config)
    expected = textbook_psi(reference[feature], current[feature], config["psi_epsilon"])
    assert drift["features"][feature]["psi"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    if drifted and feature in SHIFTED:
        assert expected > 0.2


def test_empty_bins_use_the_documented_epsilon(reference_profile: dict, config: dict) -> None:
    features, _, predictions = make_world(2_000, seed=8)
    features = features.assign(num_lab_procedures=1_000.0)  # every value in the top bin
    drift = compute_data_drift(predictions, features, reference_profile, RUN_DATE, config)
    entry = drift["features"]["num_lab_procedures"]
    eps = config["psi_epsilon"]
    ref, cur = np.maximum(entry["reference"], eps), np.maximum(entry["current"], eps)
    assert entry["current"][-1] == 1.0
    assert entry["psi"] == pytest.approx(float(np.sum((cur - ref) * np.log(cur / ref))))
    assert np.isfinite(entry["psi"]) and entry["drift"]


def test_missing_rate_limit_is_absolute_for_complete_features_relative_for_gappy_ones() -> None:
    complete = pd.Series([1.0] * 88 + [np.nan] * 12)
    assert missing_rate_check(complete, 0.0, ["Missing"], 0.10)["missing_breach"]
    assert not missing_rate_check(complete, 0.0, ["Missing"], 0.15)["missing_breach"]
    gappy = pd.Series(["x"] * 40 + ["Missing"] * 60)  # 60% missing, as in training
    assert not missing_rate_check(gappy, 0.55, ["Missing"], 0.10)["missing_breach"]
    assert missing_rate_check(gappy, 0.45, ["Missing"], 0.10)["missing_breach"]


def test_a_feature_going_missing_alerts_but_does_not_recommend_retraining(
    world, reference_profile: dict, config: dict
) -> None:
    features, _, predictions = world
    features = features.copy()
    features.loc[features.index[:3_000], "num_medications"] = np.nan  # 15% > 10%
    drift = compute_data_drift(predictions, features, reference_profile, RUN_DATE, config)
    assert drift["missing_rate_breaches"] == ["num_medications"]
    assert drift["drifted_features"] == []
    signal = decide_retraining(NO_CONCEPT_CHECK, drift, reference_profile, RUN_DATE, config)
    assert not signal["retrain_recommended"]


def test_too_few_scored_encounters_mean_drift_not_evaluated(
    reference_profile: dict, config: dict
) -> None:
    features, _, predictions = make_world(50, seed=9)
    drift = compute_data_drift(predictions, features, reference_profile, RUN_DATE, config)
    assert not drift["available"]
    assert "50 of 50 scored encounters" in drift["reason"]


def test_gold_without_a_profiled_feature_is_refused(world, reference_profile, config) -> None:
    features, _, predictions = world
    with pytest.raises(ValueError, match=r"lacks \['insulin'\]"):
        compute_data_drift(
            predictions, features.drop(columns="insulin"), reference_profile, RUN_DATE, config
        )
