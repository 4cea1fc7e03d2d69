"""Inference nodes on real small models in a real registry: new work, batches, versions, contracts."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pandas as pd
import pytest
from kedro.io import DatasetError

from readmit_kedro.io.model_store import ServingModelDataset
from readmit_kedro.io.predictions import (
    PREDICTION_DTYPES,
    PredictionsDataset,
    as_prediction_table,
)
from readmit_kedro.io.registry import ModelIntegrityError
from readmit_kedro.pipelines.inference.inputs import check_inputs, scorable, training_profile
from readmit_kedro.pipelines.inference.nodes import (
    GoldSchemaError,
    publish_predictions,
    resolve_model,
    score_encounters,
    select_new_encounters,
)
from readmit_kedro.run_context import ConfigError
from readmit_kedro.schema import (
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    NUMERIC_FEATURES,
    PREDICTION_COLUMNS,
)

from .conftest import register

JUNE = "2008-06-30"


def admitted_by(features: pd.DataFrame, day: str) -> pd.DataFrame:
    """Gold as it stood on ``day``: encounters admitted up to then."""
    return features[features["admission_date"] <= pd.Timestamp(day)]


def _no_predictions() -> pd.DataFrame:
    return as_prediction_table(pd.DataFrame(columns=list(PREDICTION_COLUMNS)))


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_first_run_scores_every_encounter_admitted_up_to_run_date(
    gold, run_inference, registry, champion_bundle, config
):
    features = gold[0]
    result = run_inference(features, JUNE)
    rows = result.predictions
    expected = admitted_by(features, JUNE)
    assert sorted(rows["encounter_id"]) == sorted(expected["encounter_id"])
    assert tuple(rows.columns) == PREDICTION_COLUMNS
    assert rows.dtypes.astype(str).to_dict() == PREDICTION_DTYPES
    # the calibrated champion's own numbers, the threshold and the bands of the parameters
    ordered = expected.set_index("encounter_id").loc[rows["encounter_id"], list(FEATURE_COLUMNS)]
    probability, lower, upper = champion_bundle.predict_with_interval(ordered)
    np.testing.assert_allclose(rows["probability"], probability)
    np.testing.assert_allclose(rows["probability_lower"], lower)
    np.testing.assert_allclose(rows["probability_upper"], upper)
    assert (rows["probability_lower"] <= rows["probability"]).all()
    assert (rows["probability"] <= rows["probability_upper"]).all()
    assert (
        rows["predicted_label"] == (rows["probability"] >= config["prediction_threshold"])
    ).all()
    expected_band = np.select(
        [rows["probability"] >= 0.3, rows["probability"] >= 0.1], ["high", "medium"], "low"
    )
    assert (rows["risk_band"] == expected_band).all()
    champion = registry.champion()
    assert set(rows["model_algorithm"]) == {"xgboost"}
    assert set(rows["model_version"]) == {champion["version"]}
    assert set(rows["model_sha256"]) == {champion["sha256"]}
    assert set(rows["run_date"]) == {JUNE}
    assert set(rows["scored_at"]) == {f"{JUNE}T00:00:00+00:00"}
    assert result.summary["intervals"] == {"status": "written", "level": 0.9}
    assert result.signal == {
        "run_date": JUNE, "rows_scored": len(rows), "new_predictions": True, "replaced_rows": 0,
        "store_rows": len(rows),
    }  # fmt: skip
    pd.testing.assert_frame_equal(result.store, rows)


def test_next_run_finds_nothing_and_a_new_month_finds_only_that_month(
    gold, run_inference, outputs, caplog: pytest.LogCaptureFixture
):
    features = gold[0]
    june = run_inference(admitted_by(features, JUNE), JUNE)

    with caplog.at_level(logging.INFO, logger="readmit_kedro"):
        idle = run_inference(admitted_by(features, JUNE), "2008-07-01")
    assert "No new data to predict" in caplog.text
    assert len(idle.predictions) == 0 and outputs.dated_file("2008-07-01").exists()
    assert idle.signal["rows_scored"] == 0 and idle.signal["new_predictions"] is False
    assert idle.summary["rows_scored"] == 0
    pd.testing.assert_frame_equal(idle.store, june.store)

    july = run_inference(admitted_by(features, "2008-07-31"), "2008-07-31")
    admitted = features["admission_date"]
    in_july = features[(admitted > pd.Timestamp(JUNE)) & (admitted <= pd.Timestamp("2008-07-31"))]
    assert len(in_july) > 0
    assert sorted(july.predictions["encounter_id"]) == sorted(in_july["encounter_id"])
    assert len(july.store) == len(june.store) + len(in_july)
    assert not july.store["encounter_id"].duplicated().any()


def test_rerunning_a_date_writes_the_same_files_and_no_duplicates(gold, run_inference, outputs):
    features = gold[0]
    run_inference(admitted_by(features, JUNE), JUNE)
    dated, store = sha256(outputs.dated_file(JUNE)), sha256(outputs.store_file)
    again = run_inference(admitted_by(features, JUNE), JUNE)
    assert sha256(outputs.dated_file(JUNE)) == dated
    assert sha256(outputs.store_file) == store
    assert again.signal["replaced_rows"] == again.signal["rows_scored"] > 0
    assert not again.store["encounter_id"].duplicated().any()

    # a backfill of June after July ran: June's rows are replaced, the store is the same file
    run_inference(admitted_by(features, "2008-07-31"), "2008-07-31")
    after_july = sha256(outputs.store_file)
    run_inference(admitted_by(features, JUNE), JUNE)
    assert sha256(outputs.dated_file(JUNE)) == dated
    assert sha256(outputs.store_file) == after_july


def test_batch_size_does_not_change_a_single_number(gold, run_inference):
    features = admitted_by(gold[0], JUNE)
    one_batch = run_inference(features, JUNE, batch_size=100_000)
    assert one_batch.summary["batches"] == 1
    ragged = run_inference(features, JUNE, batch_size=999)
    assert len(features) % 999 != 0  # the last batch is a short one
    assert ragged.summary["batches"] == len(features) // 999 + 1
    pd.testing.assert_frame_equal(ragged.predictions, one_batch.predictions, check_exact=True)


def test_a_pinned_version_scores_instead_of_the_champion(
    gold, run_inference, registry, bare_bundle
):
    features = admitted_by(gold[0], JUNE)
    pinned = register(registry, "logistic_regression", bare_bundle, promote=False)
    result = run_inference(features, JUNE, pin=("logistic_regression", pinned))
    rows = result.predictions
    assert set(rows["model_algorithm"]) == {"logistic_regression"}
    assert set(rows["model_version"]) == {pinned}
    assert set(rows["model_sha256"]) == {registry.record("logistic_regression", pinned)["sha256"]}
    assert result.summary["model"]["selected_by"] == "pinned"
    ordered = features.set_index("encounter_id").loc[rows["encounter_id"], list(FEATURE_COLUMNS)]
    np.testing.assert_allclose(rows["probability"], bare_bundle.predict_proba(ordered)[:, 1])


def test_an_unknown_pinned_version_names_the_registry_index(registry):
    never = "v20200101T000000000000Z"
    pinned = ServingModelDataset(path=registry.root, model_algorithm="xgboost", model_version=never)
    with pytest.raises(
        DatasetError, match=rf"xgboost {never} is not in .*registry/xgboost/versions"
    ):
        pinned.load()


def test_a_half_pin_names_both_keys(registry):
    with pytest.raises(DatasetError, match=r"set both inference_config\.model_algorithm and"):
        ServingModelDataset(path=registry.root, model_algorithm="xgboost")


def test_a_model_promoted_between_tasks_is_refused(gold, registry, bare_bundle, config):
    first = ServingModelDataset(path=registry.root).load()
    model = resolve_model(first, config)
    register(registry, "logistic_regression", bare_bundle, promote=True)
    new = select_new_encounters(admitted_by(gold[0], JUNE), _no_predictions(), model, JUNE)
    with pytest.raises(
        ModelIntegrityError, match="but the registry now serves logistic_regression"
    ):
        score_encounters(new, ServingModelDataset(path=registry.root).load(), model, config, JUNE)


def test_a_bare_bundle_scores_with_null_intervals(gold, run_inference, registry, bare_bundle):
    register(registry, "logistic_regression", bare_bundle, promote=True)
    result = run_inference(admitted_by(gold[0], JUNE), JUNE)
    assert result.predictions["probability_lower"].isna().all()
    assert result.predictions["probability_upper"].isna().all()
    assert result.predictions["probability"].notna().all()
    assert "has no predict_with_interval" in result.summary["intervals"]["status"]


def test_intervals_switched_off_are_null_and_said_so(gold, run_inference):
    result = run_inference(admitted_by(gold[0], JUNE), JUNE, confidence_intervals=False)
    assert result.predictions[["probability_lower", "probability_upper"]].isna().all().all()
    assert "confidence_intervals is false" in result.summary["intervals"]["status"]


def test_a_gold_schema_change_fails_before_scoring_naming_the_columns(gold, run_inference, outputs):
    features = gold[0].drop(columns="num_medications").assign(frailty_score=1.0)
    with pytest.raises(GoldSchemaError, match=r"missing \['num_medications'\], unexpected"):
        run_inference(features, JUNE)
    with pytest.raises(GoldSchemaError, match=r"unexpected \['frailty_score'\]"):
        run_inference(features, JUNE)
    assert not outputs.root.exists()  # nothing was written


def test_a_tampered_bundle_is_refused(gold, run_inference, registry, outputs):
    champion = registry.champion()
    bundle = registry.store.path("xgboost", champion["version"], "model.pkl")
    data = bytearray(registry.store.read_bytes(bundle))
    data[len(data) // 2] ^= 0xFF
    registry.store.write_bytes(bundle, bytes(data))
    with pytest.raises(DatasetError, match="refusing to unpickle") as error:
        run_inference(gold[0], JUNE)
    assert isinstance(error.value.__cause__, ModelIntegrityError)
    assert not outputs.root.exists()


def test_an_empty_registry_is_a_clear_error_naming_it(tmp_path):
    root = tmp_path / "empty-registry"
    with pytest.raises(DatasetError, match=f"no champion model in the registry {root}"):
        ServingModelDataset(path=str(root)).load()


def test_every_config_problem_is_reported_at_once(registry, config):
    bad = {**config, "batch_size": 0, "risk_bands": {"low": 0.0, "high": 0.3, "medium": 0.1}}
    bad["extreme_value_z"] = -1
    with pytest.raises(ConfigError) as error:
        resolve_model(ServingModelDataset(path=registry.root).load(), bad)
    message = str(error.value)
    assert "inference_config.batch_size must be an int >= 1, got 0" in message
    assert "strictly increase" in message
    assert "inference_config.extreme_value_z must be a number > 0, got -1" in message


def test_unusual_inputs_are_scored_and_counted(gold, run_inference, champion_bundle):
    features = admitted_by(gold[0], JUNE).dropna().head(40).reset_index(drop=True)
    odd = features.copy()
    odd.loc[[0, 1, 2], "medical_specialty"] = "Astrobiology"  # never seen in training
    odd.loc[3, "payer_code"] = "ZZ"
    odd.loc[[4, 5], "num_lab_procedures"] = np.nan
    odd.loc[6, "race"] = None
    odd.loc[[7, 8], "num_medications"] = 1e7  # far beyond any training value
    odd.loc[9, "number_inpatient"] = np.inf
    result = run_inference(odd, JUNE)

    assert len(result.predictions) == 40
    assert np.isfinite(result.predictions["probability"]).all()
    inputs = result.summary["inputs"]
    assert inputs["unseen_categories"]["by_column"] == {"medical_specialty": 3, "payer_code": 1}
    assert inputs["unseen_categories"]["rows"] == 4
    assert inputs["missing_values"]["by_column"] == {"num_lab_procedures": 2, "race": 1}
    assert inputs["missing_values"]["rows"] == 3
    assert inputs["extreme_values"]["by_column"] == {"num_medications": 2}
    assert inputs["infinite_values"]["by_column"] == {"number_inpatient": 1}
    # the profile was read from the champion itself: every gold feature is checked
    assert inputs["unseen_categories"]["checked_columns"] == sorted(CATEGORICAL_FEATURES)
    assert inputs["extreme_values"]["checked_columns"] == sorted(NUMERIC_FEATURES)
    # an infinite value is scored exactly as a missing one
    as_missing = odd.loc[[9], list(FEATURE_COLUMNS)].replace(np.inf, np.nan)
    scored = result.predictions.set_index("encounter_id").loc[odd.loc[9, "encounter_id"]]
    assert scored["probability"] == pytest.approx(champion_bundle.predict_proba(as_missing)[0, 1])


def test_the_service_repairs_inputs_as_check_inputs_without_counting(gold, champion_bundle):
    features = admitted_by(gold[0], JUNE).head(40).reset_index(drop=True)[list(FEATURE_COLUMNS)]
    features.loc[[1, 5], "number_inpatient"] = np.inf
    features.loc[3, "num_medications"] = -np.inf
    repaired, _ = check_inputs(features, training_profile(champion_bundle), 10)
    pd.testing.assert_frame_equal(scorable(features), repaired)
    assert not np.isinf(scorable(features).select_dtypes("number").to_numpy()).any()
    # column arrays (what the service hands it, no DataFrame) are repaired the same way
    columns = scorable({c: features[c].array for c in features})
    pd.testing.assert_frame_equal(pd.DataFrame(columns), repaired)


def test_prediction_tables_follow_the_schema_contract(tmp_path):
    assert tuple(PREDICTION_DTYPES) == PREDICTION_COLUMNS
    missing = PredictionsDataset(path=str(tmp_path / "none.parquet")).load()
    assert missing.empty and missing.dtypes.astype(str).to_dict() == PREDICTION_DTYPES
    with pytest.raises(DatasetError, match="prediction tables have the columns"):
        PredictionsDataset(path=str(tmp_path / "x.parquet")).save(pd.DataFrame({"a": [1]}))


def test_a_failed_write_leaves_the_previous_table_whole(gold, run_inference, outputs):
    first = run_inference(admitted_by(gold[0], JUNE), JUNE).store
    broken = as_prediction_table(first).astype({"risk_band": object})
    broken.loc[0, "risk_band"] = object()  # cannot be written as Parquet
    with pytest.raises(DatasetError, match="Conversion failed for column risk_band"):
        PredictionsDataset(path=str(outputs.store_file)).save(broken)
    pd.testing.assert_frame_equal(outputs.store.load(), first)
    assert [p.name for p in outputs.root.iterdir() if ".tmp" in p.name] == []


def test_a_store_changed_under_the_run_is_not_overwritten(gold, run_inference):
    """Two overlapping runs (Airflow allows one at a time) would otherwise duplicate rows."""
    june = run_inference(admitted_by(gold[0], JUNE), JUNE).predictions
    meanwhile = june.head(3).assign(run_date="2008-06-29")  # another run scored three of them
    with pytest.raises(RuntimeError, match="3 encounters of this run were predicted by another"):
        publish_predictions({f"predictions_{JUNE}": lambda: june}, meanwhile, JUNE)
