"""The champion's reference profile: JSON layout, binning rules, rare categories, missing rates."""

from __future__ import annotations

import json

import numpy as np
import pytest

from readmit_kedro.model.reference_profile import (
    CHAMPION_METRICS,
    OTHER,
    bin_proportions,
    build_reference_profile,
)
from readmit_kedro.schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES

from .conftest import make_features, true_scores

METRICS = dict.fromkeys(CHAMPION_METRICS, 0.5)


def test_profile_is_strict_json_with_the_documented_layout(reference_profile: dict) -> None:
    text = json.dumps(reference_profile, allow_nan=False)  # raises on NaN/inf or numpy types
    profile = json.loads(text)
    assert set(profile) == {
        "profile_version", "reference_rows", "missing_tokens", "numeric", "categorical",
        "missing_rate", "score", "champion_metrics",
        "input_means", "champion",  # added by training's build_champion_reference
    }  # fmt: skip
    assert list(profile["numeric"]) == list(NUMERIC_FEATURES)
    assert list(profile["categorical"]) == list(CATEGORICAL_FEATURES)
    assert set(profile["champion_metrics"]) == set(CHAMPION_METRICS)
    assert profile["reference_rows"] == 20_000


def test_numeric_bins_are_deduplicated_deciles(reference_profile: dict) -> None:
    lab = reference_profile["numeric"]["num_lab_procedures"]
    assert len(lab["edges"]) == 9  # a continuous-ish feature keeps 10 bins
    assert lab["edges"] == sorted(lab["edges"])
    assert lab["proportions"] == pytest.approx([0.1] * 10, abs=0.02)
    emergency = reference_profile["numeric"]["number_emergency"]  # ~82% zeros
    assert len(emergency["edges"]) < 9
    assert len(emergency["proportions"]) == len(emergency["edges"]) + 1
    for entry in (*reference_profile["numeric"].values(), reference_profile["score"]):
        assert sum(entry["proportions"]) == pytest.approx(1.0)


def test_bins_are_right_closed_and_open_ended() -> None:
    shares = bin_proportions(np.array([-5.0, 0.0, 0.5, 1.0, 7.0]), [0.0, 1.0])
    assert shares.tolist() == [0.4, 0.4, 0.2]  # (-inf, 0], (0, 1], (1, inf)


def test_rare_categories_fold_into_other(reference_profile: dict) -> None:
    specialty = reference_profile["categorical"]["medical_specialty"]["proportions"]
    assert "Rare-1" in specialty  # 0.6% of rows, above the 0.5% cut
    assert "Rare-2" not in specialty  # 0.4%
    assert specialty[OTHER] == pytest.approx(0.004, abs=0.0015)
    assert reference_profile["categorical"]["gender"]["proportions"][OTHER] == 0.0
    for entry in reference_profile["categorical"].values():
        assert sum(entry["proportions"].values()) == pytest.approx(1.0)


def test_missing_rates_count_nulls_and_the_missing_token(params: dict) -> None:
    features = make_features(5_000, seed=4)
    features.loc[features.index[::4], "num_medications"] = np.nan  # a quarter NULL
    profile = build_reference_profile(
        features, true_scores(features), METRICS, params["reference_profile_config"]
    )
    rates = profile["missing_rate"]
    assert rates["num_medications"] == pytest.approx(0.25, abs=0.001)
    assert rates["medical_specialty"] == pytest.approx(0.45, abs=0.02)  # "Missing" token
    assert rates["num_lab_procedures"] == 0.0


def test_the_profile_refuses_incomplete_inputs(params: dict) -> None:
    train = make_features(200, seed=3)
    scores = true_scores(train)
    config = params["reference_profile_config"]
    with pytest.raises(ValueError, match="brier"):
        build_reference_profile(train, scores, {**METRICS, "brier": None}, config)
    with pytest.raises(ValueError, match="199 reference scores for 200"):
        build_reference_profile(train, scores[:-1], METRICS, config)
    with pytest.raises(ValueError, match="NaN"):
        build_reference_profile(train, np.where(scores > 0.5, np.nan, scores), METRICS, config)
    with pytest.raises(ValueError, match="insulin"):
        build_reference_profile(train.drop(columns="insulin"), scores, METRICS, config)
