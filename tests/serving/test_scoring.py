"""The Scorer's start-up work that keeps a request fast, each checked against its reason."""

from __future__ import annotations

import json

from readmit_kedro.io.model_store import ServingModelDataset
from readmit_kedro.serving.scoring import Scorer


def booster_threads(scorer: Scorer) -> str:
    booster = scorer.explainer.model.get_booster()
    return json.loads(booster.save_config())["learner"]["generic_param"]["nthread"]


def test_one_record_at_a_time_is_answered_as_in_a_batch(client, landing_rows):
    """Single records (the encoder's few-row lookups) get the answers of one batch request (Arrow's
    lookups; test_parity holds batch requests to the batch pipeline), contributions included."""
    rows = landing_rows[landing_rows["admission_date"].str.startswith("2008")].iloc[:120]
    records = rows.to_dict("records")
    batch = client.post("/v1/predict/batch", json={"records": records}).json()["predictions"]
    assert any(not answer["scored"] for answer in batch)  # both kinds of answer are compared
    assert [client.post("/v1/predict", json=record).json() for record in records] == batch


def test_the_served_booster_predicts_on_one_thread(registry, params, id_mapping):
    """A champion trained with two threads is served with one (its OpenMP pool cost a row
    ~24 ms on the loaded 2-core machine, against 0.4 ms)."""
    served = ServingModelDataset(path=registry.root).load()
    served.model.model.steps[-1][1].set_params(n_jobs=2)  # as training's model_config.n_jobs
    scorer = Scorer(served, params, id_mapping)
    assert booster_threads(scorer) == "1"
