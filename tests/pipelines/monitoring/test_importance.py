"""Global importance: exact contributions, month by month, and the alert on a ranking change."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier

from readmit_kedro.io.registry import LoadedModel
from readmit_kedro.model import importance
from readmit_kedro.model.calibration import calibrate
from readmit_kedro.pipelines.monitoring import nodes
from readmit_kedro.pipelines.monitoring.config import Importance
from readmit_kedro.pipelines.monitoring.importance import ranking_change
from readmit_kedro.run_context import ConfigError
from readmit_kedro.schema import FEATURE_COLUMNS, TARGET

from .conftest import CHAMPION, CLEAN, RUN_DATE, make_world, training_window

TITLE = "Feature importance ranking changed"


def _with_estimator(champion: LoadedModel, estimator) -> Pipeline:
    """The champion's fitted preprocessor in front of ``estimator`` fitted on the train window."""
    preprocess = champion.model[:-1]
    train = training_window()
    estimator.fit(preprocess.transform(train[list(FEATURE_COLUMNS)]), train[TARGET])
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


@pytest.fixture(scope="module")
def world():
    return make_world(6_000, seed=41)


@pytest.fixture(scope="module")
def bundles(champion) -> dict[str, Pipeline]:
    """Each algorithm the project trains, behind the champion's fitted preprocessor."""
    booster = XGBClassifier(n_estimators=30, max_depth=3, n_jobs=1, random_state=0)
    forest = RandomForestClassifier(n_estimators=10, max_depth=6, n_jobs=1, random_state=0)
    return {
        "logistic_regression": champion.model,
        "xgboost": _with_estimator(champion, booster),
        "random_forest": _with_estimator(champion, forest),
    }


def _run(world, champion, profile, config) -> tuple[dict, list[dict]]:
    """The importance node, then the alerts built from it (performance and drift not evaluated)."""
    features, _, predictions = world
    result = nodes.compute_feature_importance(
        predictions, features, champion, profile, RUN_DATE, config
    )
    quiet = {"available": False, "reason": "not evaluated here"}
    performance = {
        "concept_drift": {"breaches": []},
        "label_maturity": {"predictions_in_window": 0, "mature_labelled": 0, "immature": 0,
                           "mature_unlabelled": 0},
        "metrics": quiet,
        "window": {"run_date": RUN_DATE, "admitted_after": "2008-10-02"},
    }  # fmt: skip
    signal = {"run_date": RUN_DATE, "retrain_recommended": False, "reasons": []}
    alerts = nodes.build_alerts(performance, quiet, signal, config, CLEAN, result)["alerts"]
    return result, alerts


@pytest.mark.parametrize("algorithm", ["logistic_regression", "xgboost", "random_forest"])
def test_contributions_add_up_to_the_raw_score(
    algorithm, bundles, reference_profile, world
) -> None:
    bundle = bundles[algorithm]
    # calibrated, as training registers it: the explainer must see through the calibrator
    rows = world[0].iloc[:1_500]
    calibrated = calibrate(bundle, rows, world[1][TARGET].to_numpy()[:1_500])
    explainer = importance.explainer_of(calibrated, reference_profile["input_means"])
    features = world[0].iloc[1_500:3_000]
    encoded = importance.encode(calibrated, features)
    raw = explainer.raw_score(encoded)
    # the raw score is the uncalibrated bundle's, not something of the explainer's own: its
    # log-odds, or for a forest its probability (the mean of the trees' leaf shares)
    probability = bundle.predict_proba(features[list(FEATURE_COLUMNS)])[:, 1]
    if algorithm == "random_forest":
        np.testing.assert_allclose(raw, probability, atol=1e-9)
    else:
        np.testing.assert_allclose(raw, np.log(probability / (1 - probability)), atol=1e-4)
    contributions = explainer.contributions(encoded)
    np.testing.assert_allclose(contributions.sum(axis=1), raw, atol=1e-4)
    # per gold feature, nothing is lost: the features' contributions and the bias still add up
    per_feature = importance.feature_contributions(explainer, encoded)
    assert set(per_feature.columns) <= set(FEATURE_COLUMNS)
    np.testing.assert_allclose(
        per_feature.sum(axis=1).to_numpy() + contributions[:, -1], raw, atol=1e-4
    )


def test_linear_contributions_are_measured_from_the_training_means(champion, reference_profile):
    """An encounter at the training means gets no contribution, whatever the coefficients."""
    explainer = importance.explainer_of(champion.model, reference_profile["input_means"])
    means = np.asarray(reference_profile["input_means"]["values"])[None, :]
    np.testing.assert_allclose(explainer.contributions(means)[0, :-1], 0.0, atol=1e-12)


def test_every_encoded_input_belongs_to_a_gold_feature(champion) -> None:
    names = champion.model[:-1].get_feature_names_out()
    owners = {importance.gold_feature(str(n)) for n in names}
    assert owners <= set(FEATURE_COLUMNS) and {"number_inpatient", "discharge_group"} <= owners
    assert importance.gold_feature("cat__admission_type_code_1") == "admission_type_code"
    assert importance.gold_feature("num__missingindicator_age_years") == "age_years"
    with pytest.raises(ValueError, match="not an input"):
        importance.gold_feature("num__not_a_feature")


def test_importance_is_recorded_month_by_month(world, champion, reference_profile, config):
    result, alerts = _run(world, champion, reference_profile, config)
    assert result["available"] and result["model"] == CHAMPION
    assert "linear SHAP" in result["method"] and "independent" in result["method"]
    periods = result["periods"]
    assert [p["admitted_until"] for p in periods] == ["2008-11-01", "2008-12-01", "2008-12-31"]
    assert sum(p["rows"] for p in periods) == len(world[0])
    # about 2,000 a period: each explained on a sample of max_rows_per_period
    assert [p["explained"] for p in periods] == [config["importance"]["max_rows_per_period"]] * 3
    again, _ = _run(world, champion, reference_profile, config)
    assert again == result  # the sample is seeded: a re-run reports the same
    for period in periods:
        ranking = list(period["mean_abs_shap"])
        assert ranking[0] == "number_inpatient"  # the synthetic world's strongest driver
        values = list(period["mean_abs_shap"].values())
        assert values == sorted(values, reverse=True)
    assert result["ranking_change"]["changed"] is False
    assert not [a for a in alerts if a["title"] == TITLE]


def test_a_ranking_change_from_the_previous_month_warns(
    world, champion, reference_profile, config
) -> None:
    features, labels, predictions = world
    last_month = features["admission_date"] > pd.Timestamp(RUN_DATE) - pd.Timedelta(days=30)
    # at its training mean, number_inpatient explains nothing: it falls out of the top
    mean = training_window()["number_inpatient"].mean()
    changed = features.assign(number_inpatient=features["number_inpatient"].mask(last_month, mean))
    result, alerts = _run((changed, labels, predictions), champion, reference_profile, config)
    change = result["ranking_change"]
    assert change["changed"] is True
    moved = {m["feature"]: m for m in change["moves"]}
    assert moved["number_inpatient"]["previous_rank"] == 1
    assert moved["number_inpatient"]["current_rank"] > config["importance"]["top_features"]
    [alert] = [a for a in alerts if a["title"] == TITLE]
    assert alert["severity"] == "warning"
    assert "number_inpatient 1 -> " in alert["message"]
    assert "periods ending 2008-12-01 and 2008-12-31" in alert["message"]


def test_what_counts_as_a_ranking_change_is_configurable() -> None:
    def period(*names: str) -> dict:
        values = dict(zip(names, np.linspace(1.0, 0.1, len(names)).tolist(), strict=True))
        return {"admitted_until": "x", "available": True, "mean_abs_shap": values}

    before, after = period("a", "b", "c", "d", "e", "f"), period("b", "a", "c", "d", "e", "f")
    swap = Importance(30, top_features=3, min_rank_shift=2, max_rows_per_period=500, seed=0)
    assert ranking_change(before, after, swap)["changed"] is False  # neighbours swapping
    strict = Importance(30, top_features=3, min_rank_shift=1, max_rows_per_period=500, seed=0)
    assert [m["feature"] for m in ranking_change(before, after, strict)["moves"]] == ["a", "b"]
    # "f" climbs from 6th into the top 3: a move of 4 places
    climbed = ranking_change(before, period("a", "f", "b", "c", "d", "e"), swap)
    assert climbed["moves"] == [{"feature": "f", "previous_rank": 6, "current_rank": 2}]
    # a change outside the top (both periods) is not watched
    assert ranking_change(before, period("a", "b", "c", "f", "e", "d"), swap)["changed"] is False


def test_a_month_with_too_few_encounters_is_not_compared(
    world, champion, reference_profile, config
) -> None:
    features, labels, predictions = world
    recent = predictions["admission_date"] > pd.Timestamp(RUN_DATE) - pd.Timedelta(days=31)
    sparse = pd.concat([predictions[~recent], predictions[recent].iloc[:50]])
    result, alerts = _run((features, labels, sparse), champion, reference_profile, config)
    assert result["periods"][-1]["available"] is False
    assert "(< 100)" in result["ranking_change"]["reason"]
    assert not [a for a in alerts if a["title"] == TITLE]


def test_a_window_with_nothing_scored_is_not_available(
    world, champion, reference_profile, config
) -> None:
    features, labels, predictions = world
    result, alerts = _run(
        (features, labels, predictions.iloc[:0]), champion, reference_profile, config
    )
    assert [p["available"] for p in result["periods"]] == [False] * 3
    assert result["ranking_change"]["changed"] is False
    assert not [a for a in alerts if a["title"] == TITLE]


def test_a_random_forest_is_explained_by_shap(world, bundles, reference_profile, config) -> None:
    served = LoadedModel({"algorithm": "random_forest", "version": "v1"}, bundles["random_forest"])
    result, _ = _run(world, served, reference_profile, config)
    assert result["available"] and "shap package" in result["method"]
    assert all(next(iter(p["mean_abs_shap"])) == "number_inpatient" for p in result["periods"])


def test_a_model_without_an_exact_explainer_is_reported_not_available(
    world, champion, reference_profile, config
) -> None:
    other = _with_estimator(champion, DummyClassifier())
    served = LoadedModel({"algorithm": "dummy", "version": "v1"}, other)
    result, alerts = _run(world, served, reference_profile, config)
    assert result == {
        "available": False,
        "reason": "no exact SHAP explainer for DummyClassifier in this project",
        "model": {"algorithm": "dummy", "version": "v1"},
    }
    assert not [a for a in alerts if a["title"] == TITLE]


def test_a_linear_model_the_profile_does_not_describe_is_not_explained(
    world, champion, reference_profile, config
) -> None:
    pinned = LoadedModel({**CHAMPION, "version": "v20070101T000000000000Z"}, champion.model)
    result, _ = _run(world, pinned, reference_profile, config)
    assert result["available"] is False and "training means" in result["reason"]


def test_a_period_longer_than_half_the_window_is_refused(config) -> None:
    bad = {**config, "importance": {**config["importance"], "period_days": 60}}
    with pytest.raises(ConfigError, match="period_days must be at most half of lookback_days"):
        nodes.compute_feature_importance(None, None, None, None, RUN_DATE, bad)
