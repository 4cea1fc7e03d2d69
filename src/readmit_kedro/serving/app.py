"""The HTTP face of :class:`~readmit_kedro.serving.scoring.Scorer` (FastAPI, run by uvicorn).

``/health`` and ``/ready`` are open (a load balancer probes them); the ``/v1`` routes need the
``X-API-Key`` header to equal the key the service was started with (``READMIT_API_KEY``) and
explain each score (top TreeSHAP contributions) unless called with ``?explain=false``.
Single-encounter requests that arrive while others are scored are scored with them, as one batch
(:mod:`~readmit_kedro.serving.batching`). Bad input is a 422 naming each field and rule, never a
500 or a traceback; values are never echoed or logged, since a record carries patient
identifiers. Unless pinned, the service swaps in a newly promoted champion while it runs
(:mod:`~readmit_kedro.serving.reload`).
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from readmit_kedro.serving.batching import RequestBatcher
from readmit_kedro.serving.reload import ChampionWatcher
from readmit_kedro.serving.scoring import (
    MAX_BATCH,
    FieldError,
    InvalidRequest,
    ModelSource,
    Scorer,
)

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
API_KEY_ENV = "READMIT_API_KEY"
SERVE_ENV = "READMIT_SERVE_ENV"  # what `readmit serve` hands its uvicorn workers: the Kedro env
SERVE_PIN = "READMIT_SERVE_PIN"  # and the pinned "ALGORITHM VERSION", if any


def create_app(
    load_scorer: Callable[[], Scorer],
    api_key: str,
    watch: tuple[Callable[[], dict[str, Any] | None], float] | None = None,
) -> FastAPI:
    """The service; ``load_scorer`` runs at start-up (the registry load and its checks) and again
    for each new champion when ``watch`` = (the champion entry to poll, seconds between polls)."""
    if not api_key:
        raise ValueError(f"an API key is required ({API_KEY_ENV})")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.scorer = await run_in_threadpool(load_scorer)
        logger.info("serving %s", app.state.scorer.describe())
        watcher = None if watch is None else ChampionWatcher(app.state, load_scorer, *watch)
        if watcher is not None:
            watcher.start()
        yield
        if watcher is not None:
            watcher.stop()

    app = FastAPI(title="readmit-kedro scoring", lifespan=lifespan, openapi_url=None)
    app.state.scorer = None
    # single-encounter requests that arrive together are scored as one batch
    app.state.batcher = RequestBatcher(lambda: app.state.scorer)

    @app.get("/health")
    def health() -> dict[str, Any]:
        scorer = app.state.scorer
        return {"status": "ok", "model": scorer.describe() if scorer else None}

    @app.get("/ready")
    def ready() -> JSONResponse:
        loaded = app.state.scorer is not None
        return JSONResponse({"ready": loaded}, status_code=200 if loaded else 503)

    @app.post("/v1/predict")
    async def predict(request: Request) -> JSONResponse:
        return await _answer(request, api_key, batch=False)

    @app.post("/v1/predict/batch")
    async def predict_batch(request: Request) -> JSONResponse:
        return await _answer(request, api_key, batch=True)

    return app


def app_from_environment() -> FastAPI:
    """The app of ``readmit serve`` (uvicorn's factory, called in each worker): the project in
    the working directory, the env and pin from ``SERVE_ENV``/``SERVE_PIN``, the key from
    ``API_KEY_ENV``."""
    pin = tuple(os.environ.get(SERVE_PIN, "").split()) or None
    source = ModelSource(Path.cwd(), os.environ.get(SERVE_ENV) or None, pin)  # type: ignore[arg-type]
    return create_app(source.scorer, os.environ.get(API_KEY_ENV, ""), source.champion_watch())


async def _answer(request: Request, api_key: str, *, batch: bool) -> JSONResponse:
    """Authenticate, parse, score; every input problem becomes a 422 naming field and rule."""
    given = request.headers.get(API_KEY_HEADER, "")
    if not hmac.compare_digest(given.encode(), api_key.encode()):
        return JSONResponse({"detail": f"missing or wrong {API_KEY_HEADER} header"}, 401)
    try:
        body = json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return _invalid([FieldError(None, "not_json")])
    records = _records(body, batch)
    if isinstance(records, FieldError):
        return _invalid([records])
    explain = request.query_params.get("explain", "true").lower() not in ("false", "0", "no")
    try:
        if batch:
            scorer: Scorer = request.app.state.scorer
            results = await run_in_threadpool(scorer.score, records, explain=explain)
        else:
            batcher: RequestBatcher = request.app.state.batcher
            results = [await batcher.score(records[0], explain=explain)]
    except InvalidRequest as refused:
        return _invalid(refused.errors)
    logger.info("scored %d record(s)", len(results))  # counts only: no identifier in the logs
    return JSONResponse({"predictions": results} if batch else results[0])


def _records(body: Any, batch: bool) -> list[Any] | FieldError:
    if not batch:
        return [body] if isinstance(body, dict) else FieldError(None, "not_an_object")
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list):
        return FieldError("records", "missing_column")
    if not 1 <= len(records) <= MAX_BATCH:
        return FieldError("records", f"batch_size_1_to_{MAX_BATCH}")
    return records


def _invalid(errors: list[FieldError]) -> JSONResponse:
    logger.info("refused a request: %s", sorted({e.rule for e in errors}))
    return JSONResponse({"detail": [e.as_dict() for e in errors]}, status_code=422)
