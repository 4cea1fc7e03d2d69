"""One implementation: the 2008 encounters scored through the API and through the batch path
(bronze, Spark silver and gold, the inference nodes) get the same predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd

from readmit_kedro.pipelines.data_processing.gold import build_gold_features
from readmit_kedro.pipelines.data_processing.silver import build_silver
from tests.pipelines.data_processing.conftest import ingest, make_landing


def test_the_api_scores_the_2008_encounters_as_the_inference_pipeline(
    client, spark, landing_rows, params, id_mapping, run_inference
):
    rows = landing_rows[landing_rows["admission_date"].str.startswith("2008")]
    assert 200 < len(rows) <= 1_000  # one batch request

    bronze, _ = ingest(make_landing(**{"diabetic_data_2008-12": rows}), "2008-12-31")
    frame = spark.createDataFrame(pd.concat(bronze.values(), ignore_index=True))
    silver, quarantine, _ = build_silver(frame, id_mapping, "2008-12-31", params["data_quality"])
    assert quarantine.count() == 0
    gold = build_gold_features(silver, params["features"])
    batch = run_inference(gold.toArrow().to_pandas(date_as_object=False), "2008-12-31")
    expected = batch.predictions.set_index("encounter_id").sort_index()

    response = client.post("/v1/predict/batch", json={"records": rows.to_dict("records")})
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    assert [a["encounter_id"] for a in answers] == rows["encounter_id"].astype(int).tolist()
    scored = pd.DataFrame([a for a in answers if a["scored"]]).set_index("encounter_id")
    scored = scored.sort_index()
    assert scored.index.tolist() == expected.index.tolist()  # the same population
    assert len(scored) < len(rows)  # death and hospice discharges are answered, not scored

    np.testing.assert_array_equal(scored["probability"], expected["probability"])
    np.testing.assert_array_equal(scored["label"], expected["predicted_label"])
    assert scored["risk_band"].tolist() == expected["risk_band"].tolist()
    intervals = pd.DataFrame(scored["interval"].tolist(), index=scored.index)
    np.testing.assert_array_equal(intervals["lower"], expected["probability_lower"])
    np.testing.assert_array_equal(intervals["upper"], expected["probability_upper"])
    assert {m["version"] for m in scored["model"]} == set(expected["model_version"])
