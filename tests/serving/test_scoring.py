"""The Scorer's start-up work that keeps a request fast, each checked against its reason."""

from __future__ import annotations

import json

from readmit_kedro.io.model_store import ServingModelDataset
from readmit_kedro.serving.scoring import Scorer


def booster_threads(scorer: Scorer) -> str:
    booster = scorer.explainer.model.get_booster()
    return json.loads(booster.save_config())["learner"]["generic_param"]["nthread"]


def test_the_served_booster_predicts_on_one_thread(registry, params, id_mapping):
    """A champion trained with two threads is served with one (its OpenMP pool cost a row
    ~24 ms on the loaded 2-core machine, against 0.4 ms)."""
    served = ServingModelDataset(path=registry.root).load()
    served.model.model.steps[-1][1].set_params(n_jobs=2)  # as training's model_config.n_jobs
    scorer = Scorer(served, params, id_mapping)
    assert booster_threads(scorer) == "1"
