"""The scoring service over HTTP: authentication, answers, and every kind of bad input as a 422."""

from __future__ import annotations

import logging

import pytest

from readmit_kedro.serving.app import API_KEY_HEADER
from readmit_kedro.serving.scoring import MAX_BATCH


@pytest.fixture(scope="module")
def record(landing_rows) -> dict:
    """One landing record of the model population (discharged home), as JSON would carry it."""
    home = landing_rows[landing_rows["discharge_disposition_id"] == "1"]
    return home.iloc[0].to_dict()


def test_health_names_the_served_model_and_ready_says_loaded(client, registry):
    health = client.get("/health", headers={API_KEY_HEADER: ""}).json()
    champion = registry.champion()
    model = health["model"]
    assert (model["algorithm"], model["version"], model["sha256"]) == (
        champion["algorithm"], champion["version"], champion["sha256"]
    )  # fmt: skip
    assert model["selected_by"] == "champion" and model["loaded_at"]
    ready = client.get("/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True}


@pytest.mark.parametrize("key", ["", "wrong-key"])
def test_a_request_without_the_api_key_is_refused(client, record, key):
    for path, body in (("/v1/predict", record), ("/v1/predict/batch", {"records": [record]})):
        response = client.post(path, json=body, headers={API_KEY_HEADER: key})
        assert response.status_code == 401, response.text
        assert "probability" not in response.text


def test_one_encounter_is_scored_with_label_band_interval_and_model(client, record, params):
    response = client.post("/v1/predict", json=record)
    assert response.status_code == 200, response.text
    result = response.json()
    config = params["inference_config"]
    assert result["encounter_id"] == int(record["encounter_id"]) and result["scored"]
    assert 0 < result["probability"] < 1
    assert result["label"] == int(result["probability"] >= config["prediction_threshold"])
    bands = config["risk_bands"]
    expected = [band for band, low in bands.items() if result["probability"] >= low][-1]
    assert result["risk_band"] == expected
    interval = result["interval"]
    assert interval["level"] == 0.9
    assert interval["lower"] <= result["probability"] <= interval["upper"]
    assert result["model"]["algorithm"] == "xgboost"


def test_whole_numbers_may_come_as_json_numbers_and_the_outcome_may_be_left_out(client, record):
    as_numbers = {**record, "time_in_hospital": int(record["time_in_hospital"])}
    del as_numbers["readmitted"]  # unknown at discharge; no feature reads it
    plain = client.post("/v1/predict", json=record).json()
    assert client.post("/v1/predict", json=as_numbers).json() == plain


def test_a_death_or_hospice_discharge_is_answered_but_not_scored(client, record):
    response = client.post("/v1/predict", json={**record, "discharge_disposition_id": "11"})
    assert response.status_code == 200
    assert response.json()["scored"] is False and "probability" not in response.json()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"admission_type_id": "99"}, [("admission_type_id", "unknown_admission_type_id")]),
        ({"time_in_hospital": "-2"}, [("time_in_hospital", "impossible_time_in_hospital")]),
        ({"num_lab_procedures": "4x1"}, [("num_lab_procedures", "unparseable_number")]),
        ({"admission_date": "2008-02-30"}, [("admission_date", "unparseable_date")]),
        ({"encounter_id": "?"}, [("encounter_id", "missing_key")]),
        ({"metformin": "Sometimes"}, [("metformin", "unknown_drug_value")]),
        ({"time_in_hospital": 3.5}, [("time_in_hospital", "wrong_type")]),
        ({"race": ["Caucasian"]}, [("race", "wrong_type")]),
        ({"age": True}, [("age", "wrong_type")]),
        ({"blood_type": "A"}, [("blood_type", "unknown_column")]),
        (  # every field and rule at once, not just the first
            {"time_in_hospital": "40", "gender": "X", "insulin": "Often"},
            [
                ("time_in_hospital", "impossible_time_in_hospital"),
                ("gender", "unknown_gender"),
                ("insulin", "unknown_drug_value"),
            ],
        ),
    ],
)
def test_bad_input_is_a_422_naming_each_field_and_rule(client, record, change, expected):
    response = client.post("/v1/predict", json={**record, **change})
    assert response.status_code == 422, response.text
    assert [(e["field"], e["rule"]) for e in response.json()["detail"]] == expected


def test_a_missing_column_is_named(client, record):
    partial = {k: v for k, v in record.items() if k not in ("age", "diag_1")}
    response = client.post("/v1/predict", json=partial)
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {"field": "age", "rule": "missing_column"},
        {"field": "diag_1", "rule": "missing_column"},
    ]


@pytest.mark.parametrize(
    ("path", "body", "rule"),
    [
        ("/v1/predict", b"{not json", "not_json"),
        ("/v1/predict", b"[1, 2]", "not_an_object"),
        ("/v1/predict/batch", b'{"rows": []}', "missing_column"),
        ("/v1/predict/batch", b'{"records": []}', f"batch_size_1_to_{MAX_BATCH}"),
        ("/v1/predict/batch", b'{"records": [3]}', "not_an_object"),
    ],
)
def test_a_malformed_body_is_a_422_not_a_500(client, path, body, rule):
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert [e["rule"] for e in response.json()["detail"]] == [rule]


def test_a_batch_names_the_record_of_each_error_and_refuses_more_than_the_limit(client, record):
    records = [record, {**record, "encounter_id": "12", "gender": "X"}]
    response = client.post("/v1/predict/batch", json={"records": records})
    assert response.status_code == 422
    assert response.json()["detail"] == [{"field": "gender", "rule": "unknown_gender", "record": 1}]
    too_many = client.post("/v1/predict/batch", json={"records": [record] * (MAX_BATCH + 1)})
    assert too_many.status_code == 422


def test_no_patient_identifier_reaches_the_logs(client, record, caplog):
    marked = {**record, "patient_nbr": "987654321", "encounter_id": "123456789"}
    with caplog.at_level(logging.DEBUG):
        assert client.post("/v1/predict", json=marked).status_code == 200
        assert client.post("/v1/predict", json={**marked, "gender": "X"}).status_code == 422
    assert caplog.records  # the service did log
    assert "987654321" not in caplog.text and "123456789" not in caplog.text
