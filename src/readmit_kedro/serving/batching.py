"""Concurrent single-encounter requests scored together: one :meth:`Scorer.score` per batch.

Scoring one record costs ~10 ms of CPU, nearly all of it a fixed number of NumPy steps (silver's
rules and gold's features evaluated over column arrays), while a batch of 1,000 costs ~0.14 ms a
record (README figures). So while one batch is being scored, the requests that arrive queue up
and are scored next as one batch; an idle service scores a request at once, with no waiting
window, so a lone request's latency does not change.

Records are scored independently (every gold feature comes from the record's own row), so a
record gets the answer it would get alone, whatever it is batched with; a bad record is refused
with its own errors and does not fail the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from starlette.concurrency import run_in_threadpool

from readmit_kedro.serving.scoring import MAX_BATCH, FieldError, InvalidRequest, Scorer

Outcome = dict[str, Any] | BaseException


class RequestBatcher:
    """Queues single records per ``explain`` flag and scores each queue's backlog in one call.

    ``scorer_of`` is read at every batch, so a champion swapped in while requests wait scores
    them. At most ``max_records`` (the batch route's limit) are scored in one call.
    """

    def __init__(self, scorer_of: Callable[[], Scorer], max_records: int = MAX_BATCH) -> None:
        self._scorer_of = scorer_of
        self._max_records = max_records
        self._queues: dict[bool, list[tuple[Any, asyncio.Future]]] = {True: [], False: []}
        self._drains: dict[bool, asyncio.Task] = {}

    async def score(self, record: Any, *, explain: bool) -> dict[str, Any]:
        """The record's result, as ``Scorer.score([record])[0]``; raises its InvalidRequest."""
        future = asyncio.get_running_loop().create_future()
        self._queues[explain].append((record, future))
        if explain not in self._drains:
            self._drains[explain] = asyncio.create_task(self._drain(explain))
        return await future

    async def _drain(self, explain: bool) -> None:
        queue = self._queues[explain]
        try:
            while queue:
                batch = queue[: self._max_records]
                del queue[: self._max_records]
                records = [record for record, _ in batch]
                try:
                    outcomes = await run_in_threadpool(
                        score_each, self._scorer_of(), records, explain
                    )
                except Exception as failure:  # a fault, not bad input: every waiter gets it
                    outcomes = [failure] * len(batch)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():  # the client went away
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            del self._drains[explain]


def score_each(scorer: Scorer, records: list[Any], explain: bool) -> list[Outcome]:
    """Per record its result, or the :class:`InvalidRequest` it alone would raise.

    ``Scorer.score`` refuses a whole batch for any bad record, naming each bad record's position;
    those records get their own errors (without the position) and the rest are scored again.
    Shape errors stop ``score`` before silver's rules run, so this may take a few rounds.
    """
    outcomes: list[Outcome | None] = [None] * len(records)
    pending = list(range(len(records)))
    while pending:
        try:
            results = scorer.score([records[i] for i in pending], explain=explain)
        except InvalidRequest as refused:
            by_record: dict[int, list[FieldError]] = {}
            for error in refused.errors:
                if error.record is not None:
                    by_record.setdefault(pending[error.record], []).append(
                        FieldError(error.field, error.rule)
                    )
            if not by_record:  # no record named: nothing can be told apart
                raise
            for index, errors in by_record.items():
                outcomes[index] = InvalidRequest(errors)
            pending = [i for i in pending if i not in by_record]
            continue
        for index, result in zip(pending, results, strict=True):
            outcomes[index] = result
        pending = []
    return outcomes  # type: ignore[return-value]
