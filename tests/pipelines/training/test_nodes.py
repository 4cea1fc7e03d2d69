"""Node behaviour the pipeline run does not pin down: data checks, evaluation, champion choice."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from kedro.runner import SequentialRunner
from sklearn.linear_model import LogisticRegression

from readmit_kedro.io.model_store import TrainingSnapshot
from readmit_kedro.io.registry import LoadedModel
from readmit_kedro.model.calibration import cross_fitted_probabilities
from readmit_kedro.pipelines.training import create_pipeline, preprocessing
from readmit_kedro.pipelines.training.champion import (
    ChampionNotComparableError,
    build_champion_reference,
    score_current_champion,
    select_champion,
)
from readmit_kedro.pipelines.training.checks import (
    InsufficientDataError,
    UnchangedTrainingInputsError,
    check_training_data,
)
from readmit_kedro.pipelines.training.config import validate_training_config
from readmit_kedro.pipelines.training.evaluation import evaluate_model, model_bundle
from readmit_kedro.pipelines.training.modeling import ESTIMATORS
from readmit_kedro.pipelines.training.preprocessing import GoldDataError
from readmit_kedro.schema import TARGET
from tests.support.gold import month_partitions, window_inputs

from .conftest import RUN_DATE


@pytest.fixture
def plan(dev_params) -> dict:
    return validate_training_config(
        dev_params["run_date"],
        dev_params["temporal_splits"],
        dev_params["model_config"],
        dev_params["training_config"],
        **{name: dev_params[name] for name in ESTIMATORS},
    )


def test_enough_data_passes_with_a_report(small_gold, plan, dev_params):
    report = _check(*small_gold, plan, dev_params["training_config"], {})
    assert report["partitions"] == list(range(1999, 2009))
    assert all(report["rows"][w] >= 200 for w in ("train", "test", "oot"))


def test_too_few_partitions_stop_the_run(small_gold, plan, dev_params):
    features, labels = small_gold
    keep = features["admission_year"] >= 2001
    with pytest.raises(InsufficientDataError, match=r"8 admission_year partitions up to 2008"):
        _check(features[keep], labels[keep], plan, dev_params["training_config"], {})


def test_an_empty_window_or_a_single_class_stops_the_run(small_gold, plan, dev_params):
    features, labels = small_gold
    config = {**dev_params["training_config"], "data_requirements": {
        "min_partitions": 1, "min_rows_per_window": 1}}  # fmt: skip
    no_2008 = features["admission_year"] != 2008
    with pytest.raises(InsufficientDataError, match=r"window oot \(2008-2008\) has 0 rows"):
        _check(features[no_2008], labels[no_2008], plan, config, {})
    negatives = labels.assign(
        readmitted_30d=labels["readmitted_30d"].where(labels["admission_year"] < 2006, 0)
    )
    with pytest.raises(InsufficientDataError) as error:
        _check(features, negatives, plan, config, {})
    assert "window test (2006-2007) has only readmitted_30d=0" in str(error.value)
    assert "window oot (2008-2008) has only readmitted_30d=0" in str(error.value)


def test_a_run_on_the_last_runs_rows_and_parameters_is_refused(small_gold, plan, dev_params):
    features, labels = small_gold
    config = dev_params["training_config"]
    digest = _check(features, labels, plan, config, {})["inputs_sha256"]
    latest = {
        name: {"algorithm": name, "version": "v1", "training_inputs_sha256": digest}
        for name in plan["algorithms"]
    }
    with pytest.raises(
        UnchangedTrainingInputsError, match=r"nothing new to train on: .*train 1999-2005"
    ):
        _check(features, labels, plan, config, latest)
    # One changed label in train or other parameters: it runs again. OOT rows only evaluate.
    flipped = labels.copy()
    first_train = flipped.index[flipped["admission_year"] == 2000][0]
    flipped.loc[first_train, TARGET] = 1 - flipped.loc[first_train, TARGET]
    assert _check(features, flipped, plan, config, latest)["inputs_sha256"] != digest
    other = validate_training_config(
        dev_params["run_date"],
        dev_params["temporal_splits"],
        {**dev_params["model_config"], "n_iter_search": 5},
        config,
        **{name: dev_params[name] for name in ESTIMATORS},
    )
    _check(features, labels, other, config, latest)
    fewer_oot = features[(features["admission_year"] < 2008) | (features.index % 2 == 0)]
    kept_labels = labels[labels["encounter_id"].isin(fewer_oot["encounter_id"])]
    assert _check(fewer_oot, kept_labels, plan, config, {})["inputs_sha256"] == digest
    # A version trained before the digest existed (no metadata key) never blocks a run.
    del latest[plan["algorithms"][0]]["training_inputs_sha256"]
    _check(features, labels, plan, config, latest)


def test_a_partition_without_a_digest_is_never_taken_for_a_repeat(small_gold, plan, dev_params):
    """Gold saved before digests existed: the inputs cannot be named, so the run goes ahead."""
    features, labels, feature_digests, label_digests = window_inputs(*small_gold)
    del label_digests["2003-05"]
    config = dev_params["training_config"]
    stores = (features, labels, feature_digests, label_digests)
    report = check_training_data(*stores, plan, config, {}, None)
    assert report["inputs_sha256"] is None
    latest = {name: {"algorithm": name, "version": "v1"} for name in plan["algorithms"]}
    check_training_data(*stores, plan, config, latest, None)


def test_a_champion_this_run_cannot_compare_with_stops_it_before_training(
    small_gold, plan, dev_params
):
    """The check reads the champion's training windows (no bundle), so a run at an earlier date
    than the champion's stops at its first task, not after three models were trained."""
    config = dev_params["training_config"]
    test_start = plan["windows"]["test"]["start_year"]
    champion = {"algorithm": "xgboost", "version": "v2", "run_date": "2009-12-31",
                "windows": {"train": {"start_year": 2000, "end_year": test_start}}}  # fmt: skip
    with pytest.raises(ChampionNotComparableError, match=f"admission years 2000-{test_start}"):
        _check(*small_gold, plan, config, {}, champion)
    earlier = {**champion, "windows": {"train": {"start_year": 1999, "end_year": test_start - 1}}}
    assert _check(*small_gold, plan, config, {}, earlier)["rows"]["test"] > 0


def _check(features, labels, plan, config, latest, champion=None):
    return check_training_data(*window_inputs(features, labels), plan, config, latest, champion)


def _record(algorithm: str, auc: float, version: str, snapshot: str = "train_data_1") -> dict:
    return {
        "algorithm": algorithm,
        "version": version,
        "training_data_version": snapshot,
        "run_date": RUN_DATE,
        "metrics": {"test": {"roc_auc": auc, "brier": 1 - auc}, "oot": {"roc_auc": auc - 0.01}},
    }


CANDIDATES = {
    "logistic_regression": _record("logistic_regression", 0.680, "v2"),
    "random_forest": _record("random_forest", 0.690, "v2"),
    "xgboost": _record("xgboost", 0.685, "v2"),
}
CONFIG = {"champion": {"metric": "roc_auc", "tolerance": 0.005}}


def _incumbent(auc: float) -> dict:
    return {
        "champion": {
            "algorithm": "xgboost",
            "version": "v1",
            "sha256": "abc",
            "history_id": "metadata_20080101T000000000000Z.json",
        },
        "test": {"roc_auc": auc, "brier": 1 - auc},
    }


def test_first_run_promotes_the_best_on_test(plan):
    decision, report = select_champion(plan, {"champion": None}, CONFIG, **CANDIDATES)
    assert (decision["algorithm"], decision["version"]) == ("random_forest", "v2")
    assert report["promoted"] and decision["reason"].startswith("first champion: random_forest")
    assert decision["replaces"] is None  # promoted only if there is still no champion


def test_a_challenger_within_tolerance_replaces_the_champion(plan):
    decision, report = select_champion(plan, _incumbent(0.694), CONFIG, **CANDIDATES)
    assert decision["algorithm"] == "random_forest" and report["promoted"]
    assert decision["replaces"] == "metadata_20080101T000000000000Z.json"
    assert "re-scored roc_auc 0.6940" in decision["reason"]


def test_a_clearly_worse_challenger_keeps_the_champion_and_says_why(plan):
    decision, report = select_champion(plan, _incumbent(0.700), CONFIG, **CANDIDATES)
    assert (decision["algorithm"], decision["version"]) == ("xgboost", "v1")
    assert not report["promoted"]
    assert "worse by 0.0100, more than the tolerance 0.005" in report["reason"]
    assert "test window 2006-2007" in report["reason"]


def test_lower_is_better_metrics_and_ineligible_algorithms(plan):
    config = {"champion": {"metric": "brier", "tolerance": 0.0}}
    restricted = {**plan, "algorithms": ["logistic_regression", "xgboost"]}
    decision, report = select_champion(restricted, {"champion": None}, config, **CANDIDATES)
    assert (
        decision["algorithm"] == "xgboost"
    )  # random_forest has the lowest Brier but is not eligible
    assert report["candidates"]["random_forest"]["eligible"] is False


def test_candidates_from_different_runs_are_not_compared(plan):
    stale = {**CANDIDATES, "xgboost": _record("xgboost", 0.9, "v0", snapshot="train_data_0")}
    with pytest.raises(RuntimeError, match="different training runs"):
        select_champion(plan, {"champion": None}, CONFIG, **stale)


@pytest.fixture
def trained(training_catalog) -> tuple[TrainingSnapshot, LogisticRegression]:
    """The dev pipeline run up to the logistic regression fit: its snapshot and estimator."""
    catalog = training_catalog()
    SequentialRunner().run(create_pipeline().to_nodes("logistic_regression.train_model"), catalog)
    return catalog.load("preprocessed_training_data"), catalog.load("logistic_regression.estimator")


def test_evaluation_reports_threshold_metrics_and_calibration(trained, dev_params):
    snapshot, estimator = trained
    config = dev_params["training_config"]
    metrics, _ = evaluate_model(estimator, snapshot, config)
    oot = metrics["oot"]
    assert set(metrics) == {"test", "oot", "calibration"} and oot["rows"] == len(snapshot.oot)
    assert oot["threshold"] == config["prediction_threshold"] == 0.2
    assert 0 < oot["precision"] < 1 and 0 < oot["recall"] < 1
    assert oot["score_kind"] == metrics["test"]["score_kind"] == "calibrated_probability"
    table = pd.DataFrame(oot["calibration"])
    assert len(table) == 10 and table["rows"].sum() == oot["rows"]
    assert table["mean_predicted"].is_monotonic_increasing
    for window in ("test", "oot"):
        for name in ("roc_auc", "pr_auc"):
            interval = metrics[window]["intervals"][name]
            assert interval["low"] < metrics[window][name] < interval["high"]
            assert interval["estimate"] == pytest.approx(metrics[window][name])


def test_test_metrics_are_not_scored_by_a_calibrator_fitted_on_them(trained, dev_params):
    """The test Brier is that of cross-fitted probabilities (each patient fold calibrated by the
    others), not of the shipped calibrator, which was fitted on every test row."""
    snapshot, estimator = trained
    config = dev_params["training_config"]
    metrics, calibrator = evaluate_model(estimator, snapshot, config)
    X, y, patients = snapshot.arrays("test")
    raw = estimator.predict_proba(X)[:, 1]
    folds = config["evaluation"]["calibration_folds"]
    held_out = cross_fitted_probabilities(raw, y, patients, folds=folds)
    in_sample = calibrator.predict(raw)
    assert metrics["test"]["brier"] == pytest.approx(np.mean((held_out - y) ** 2), abs=1e-12)
    assert metrics["test"]["brier"] != pytest.approx(np.mean((in_sample - y) ** 2), abs=1e-6)


@pytest.fixture
def champion(trained, plan, dev_params) -> LoadedModel:
    """The logistic regression of ``trained``, bundled and registered as an incumbent would be."""
    snapshot, estimator = trained
    _, calibrator = evaluate_model(estimator, snapshot, dev_params["training_config"])
    record = {"algorithm": "logistic_regression", "version": "v1", "sha256": "x", "history_id": "h",
              "run_date": plan["run_date"], "windows": plan["windows"]}  # fmt: skip
    return LoadedModel(record, model_bundle(estimator, calibrator, snapshot))


def _past_the_memory_limit(config: dict, monkeypatch) -> dict:
    """``config`` with a train-row limit every window exceeds, and the whole-table read forbidden."""
    memory = {**config["external_memory"], "enabled": "auto", "max_in_memory_rows": 10}

    def whole(*_):
        raise AssertionError("gold was read whole past the train task's memory")

    monkeypatch.setattr(preprocessing, "_whole", whole)
    return {**config, "external_memory": memory}


@pytest.mark.parametrize("memory", ["whole", "by_partition"])
def test_the_champion_is_rescored_like_a_challenger(
    memory, trained, champion, small_gold, plan, dev_params, monkeypatch
):
    """Same rows, same kind of score: the incumbent's own calibrator saw an older test window.
    Past the train task's memory gold is read a partition at a time, with the same result."""
    snapshot, estimator = trained
    config = dev_params["training_config"]
    expected, _ = evaluate_model(estimator, snapshot, config)
    if memory == "by_partition":
        config = _past_the_memory_limit(config, monkeypatch)
    check = {"rows": {"train": snapshot.rows("train")}}
    features, labels = small_gold
    gold = month_partitions(features), month_partitions(labels)
    scores = score_current_champion(champion, *gold, snapshot, plan, check, config)
    assert scores["champion"]["version"] == "v1"
    assert scores["test"]["rows"] == expected["test"]["rows"]
    for metric in ("roc_auc", "brier", "f1"):
        assert scores["test"][metric] == pytest.approx(expected["test"][metric], abs=1e-9)
    assert score_current_champion(None, *gold, snapshot, plan, check, config) == {"champion": None}

    gone = features["encounter_id"] != snapshot.test["encounter_id"].iloc[0]
    changed = month_partitions(features[gone]), month_partitions(labels[gone])
    with pytest.raises(GoldDataError, match="gold changed since preprocessing"):
        score_current_champion(champion, *changed, snapshot, plan, check, config)


def test_a_champion_trained_on_the_test_window_is_refused_not_rescored(
    trained, champion, small_gold, plan, dev_params
):
    """Its re-score would be measured on rows it learned from: an inflated figure that keeps it.
    This happens when training runs at an earlier date than the champion's (a backfill, a replay
    over an old registry), or after its windows moved back."""
    snapshot, _ = trained
    check = {"rows": {"train": snapshot.rows("train")}}
    gold = tuple(month_partitions(frame) for frame in small_gold)
    args = (*gold, snapshot, plan, check, dev_params["training_config"])
    test_start = plan["windows"]["test"]["start_year"]
    later = {**plan["windows"], "train": {"start_year": 2000, "end_year": test_start}}
    from_a_later_run = champion._replace(
        record={**champion.record, "run_date": "2009-12-31", "windows": later}
    )
    with pytest.raises(
        ChampionNotComparableError,
        match=rf"trained on admission years 2000-{test_start} \(run_date 2009-12-31\), and this "
        rf"run's test window is {test_start}-",
    ):
        score_current_champion(from_a_later_run, *args)
    unknown = champion._replace(record={**champion.record, "windows": None})
    with pytest.raises(ChampionNotComparableError, match="has no train window on record"):
        score_current_champion(unknown, *args)
    assert score_current_champion(champion, *args)["champion"]["version"] == "v1"


def test_the_reference_read_by_partition_equals_the_one_read_whole(
    trained, champion, small_gold, plan, dev_params, monkeypatch
):
    """Monitoring's baseline does not depend on how gold was read; only the train means' float
    sums may differ, in the last bits."""
    snapshot, _ = trained
    check = {"rows": {"train": snapshot.rows("train")}}
    gold = tuple(month_partitions(frame) for frame in small_gold)
    args = (plan, check)
    profile_config = dev_params["reference_profile_config"]
    config = dev_params["training_config"]
    whole = build_champion_reference(champion, *gold, *args, config, profile_config)
    limited = _past_the_memory_limit(config, monkeypatch)
    by_partition = build_champion_reference(champion, *gold, *args, limited, profile_config)
    means = whole.pop("input_means"), by_partition.pop("input_means")
    assert means[0]["names"] == means[1]["names"]
    np.testing.assert_allclose(means[0]["values"], means[1]["values"], rtol=0, atol=1e-12)
    assert json.dumps(whole, sort_keys=True) == json.dumps(by_partition, sort_keys=True)
