"""A new champion served without a restart and without dropping a request.

A background thread reads the registry's champion entry every ``serving.champion_poll_seconds``.
When it names another model than the one served, the thread loads a whole new
:class:`~readmit_kedro.serving.scoring.Scorer` the way start-up does (registry, signature and
sha256 checks, the scorer's own checks), then replaces the app's scorer in one assignment. A
request reads the scorer once when it starts, so requests in flight finish on the old model. A
load that fails keeps the old model serving and is logged; that champion is not tried again until
the pointer changes (or the service restarts), so a broken model cannot make every poll reload.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from readmit_kedro.serving.scoring import Scorer

logger = logging.getLogger(__name__)

IDENTITY = ("algorithm", "version", "sha256")


class ChampionWatcher:
    """Polls ``champion`` (the verified champion entry, or None) and swaps ``state.scorer``."""

    def __init__(
        self,
        state: Any,
        load_scorer: Callable[[], Scorer],
        champion: Callable[[], dict[str, Any] | None],
        poll_seconds: float,
    ) -> None:
        if poll_seconds <= 0:
            raise ValueError(f"poll_seconds must be > 0, got {poll_seconds}")
        self.state = state
        self.load_scorer = load_scorer
        self.champion = champion
        self.poll_seconds = poll_seconds
        self._failed: tuple[Any, ...] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="champion-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.check()

    def check(self) -> None:
        """One poll: load and swap in the champion if it is not the served model."""
        try:
            entry = self.champion()
        except Exception as error:  # a registry outage must not stop the polling
            logger.warning("could not read the champion pointer (%s); still serving", error)
            return
        served = tuple(self.state.scorer.model[k] for k in IDENTITY)
        wanted = None if entry is None else tuple(entry[k] for k in IDENTITY)
        if wanted is None or wanted == served or wanted == self._failed:
            return
        logger.info("champion changed to %s %s: loading it", *wanted[:2])
        try:
            scorer = self.load_scorer()
        except Exception as error:  # keep serving the model that works
            self._failed = wanted
            logger.error(
                "kept serving %s %s: loading the new champion %s %s failed: %s",
                *served[:2], *wanted[:2], error,
            )  # fmt: skip
            return
        self._failed = None
        self.state.scorer = scorer  # one assignment: a request sees the old or the new scorer
        logger.info("now serving %s", scorer.describe())
