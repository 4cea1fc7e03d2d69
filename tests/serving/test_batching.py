"""Concurrent single-encounter requests are scored as one batch, each getting its own answer."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest

from readmit_kedro.io.model_store import ServingModelDataset
from readmit_kedro.serving.batching import RequestBatcher
from readmit_kedro.serving.scoring import FieldError, InvalidRequest, Scorer


@pytest.fixture(scope="module")
def records(landing_rows) -> list[dict]:
    """Twenty landing records of the model population (discharged home), as JSON carries them."""
    home = landing_rows[landing_rows["discharge_disposition_id"] == "1"]
    return [row.to_dict() for _, row in home.head(20).iterrows()]


@pytest.fixture
def scorer(registry, params, id_mapping) -> Scorer:
    return Scorer(ServingModelDataset(path=registry.root).load(), params, id_mapping)


@pytest.fixture
def batch_sizes(scorer, monkeypatch) -> list[int]:
    """How many records each ``Scorer.score`` call of ``scorer`` received (the real call runs)."""
    sizes: list[int] = []
    score = scorer.score

    def counted(records, **kwargs):
        sizes.append(len(records))
        return score(records, **kwargs)

    monkeypatch.setattr(scorer, "score", counted)
    return sizes


def _concurrently(scorer: Scorer, records: list, explain: bool) -> list:
    """Each record as its own request, all in flight at once; an answer or the exception."""

    async def main() -> list:
        batcher = RequestBatcher(lambda: scorer)
        requests = (batcher.score(record, explain=explain) for record in records)
        return await asyncio.gather(*requests, return_exceptions=True)

    return asyncio.run(main())


@pytest.mark.parametrize("explain", [True, False])
def test_requests_in_flight_together_are_scored_in_one_call(scorer, batch_sizes, records, explain):
    alone = [scorer.score([record], explain=explain)[0] for record in records]
    batch_sizes.clear()
    together = _concurrently(scorer, records, explain)
    assert batch_sizes == [len(records)]
    assert together == alone


def test_a_bad_record_is_refused_alone_and_the_others_are_scored(scorer, batch_sizes, records):
    """A shape error stops ``score`` before silver's rules, so a rule error is found a round later."""
    wrong_type = {**records[3], "time_in_hospital": 3.5}
    broken_rule = {**records[7], "admission_type_id": "99"}
    mixed = [*records[:3], wrong_type, *records[4:7], broken_rule, *records[8:]]
    alone = [scorer.score([record], explain=True)[0] for record in records]
    batch_sizes.clear()
    answers = _concurrently(scorer, mixed, explain=True)
    for index, answer in enumerate(answers):
        if index in (3, 7):
            assert isinstance(answer, InvalidRequest)
        else:
            assert answer == alone[index]
    assert answers[3].errors == [FieldError("time_in_hospital", "wrong_type")]
    assert answers[7].errors == [FieldError("admission_type_id", "unknown_admission_type_id")]
    assert batch_sizes == [20, 19, 18]


def test_concurrent_http_requests_share_batches_and_keep_their_answers(client, records):
    """Over HTTP, sixteen requests at once: each answer is the one the record gets alone."""
    alone = [client.post("/v1/predict", json=record).json() for record in records]
    with ThreadPoolExecutor(max_workers=16) as pool:
        responses = list(pool.map(lambda r: client.post("/v1/predict", json=r), records))
    assert [r.status_code for r in responses] == [200] * len(records)
    assert [r.json() for r in responses] == alone
