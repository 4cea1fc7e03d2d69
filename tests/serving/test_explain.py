"""TreeSHAP contributions: exact (they add up to the booster's raw score) and in the API."""

from __future__ import annotations

import numpy as np
import pytest

from readmit_kedro.model.compiled import CompiledBundle
from readmit_kedro.model.explain import TreeExplainer
from readmit_kedro.schema import FEATURE_COLUMNS
from tests.pipelines.inference.conftest import bare_bundle  # noqa: F401 (a fixture)


@pytest.fixture(scope="module")
def features(gold):
    return gold[0][list(FEATURE_COLUMNS)].iloc[:500]


def test_contributions_add_up_to_the_raw_score_of_the_bundle_that_scores(champion_bundle, features):
    explainer = TreeExplainer.of(champion_bundle)
    encoded = CompiledBundle.of(champion_bundle).encode(features)
    contributions = explainer.contributions(encoded)
    assert contributions.shape == (len(features), len(explainer.names) + 1)  # + the bias
    raw = explainer.raw_score(encoded)
    np.testing.assert_allclose(contributions.sum(axis=1), raw, rtol=0, atol=1e-4)
    # the raw score is the uncalibrated model the calibrated bundle wraps
    uncalibrated = champion_bundle.model.predict_proba(features)[:, 1]
    np.testing.assert_allclose(1 / (1 + np.exp(-raw)), uncalibrated, rtol=1e-5)
    assert np.abs(contributions[:, :-1]).sum() > 0


def test_the_top_contributions_are_the_largest_by_size(champion_bundle, features):
    explainer = TreeExplainer.of(champion_bundle)
    encoded = CompiledBundle.of(champion_bundle).encode(features.iloc[:20])
    top = explainer.top(encoded, 5)
    contributions = explainer.contributions(encoded)[:, :-1]
    for row, entries in enumerate(top):
        sizes = [abs(e["contribution"]) for e in entries]
        assert len(entries) == 5 and sizes == sorted(sizes, reverse=True)
        assert sizes[-1] >= np.sort(np.abs(contributions[row]))[-5]
        assert all(e["name"] in explainer.names for e in entries)


def test_a_bundle_without_trees_has_no_explainer(bare_bundle):  # noqa: F811 (a fixture)
    assert TreeExplainer.of(bare_bundle) is None


def test_the_api_explains_each_score_unless_told_not_to(client, landing_rows):
    record = landing_rows[landing_rows["discharge_disposition_id"] == "1"].iloc[0].to_dict()
    explained = client.post("/v1/predict", json=record).json()
    assert len(explained["contributions"]) == 5
    assert set(explained["contributions"][0]) == {"name", "value", "contribution"}
    plain = client.post("/v1/predict?explain=false", json=record).json()
    assert "contributions" not in plain
    assert plain["probability"] == explained["probability"]
