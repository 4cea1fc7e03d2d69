"""What a person at the terminal sees: the replay's own lines on the console, everything else in a file.

A replay runs about 40 Kedro sessions, and Kedro logs every dataset load and save at INFO: some
3,000 lines around the summary a user wants to read. ``quiet_logging`` keeps the console for one
logger (the replay's step lines, its warnings) and writes every record to a log file.

Third-party warnings the project cannot act on are filtered here, in one place, for every entry
point (``settings.py`` calls ``filter_third_party_warnings``); pytest filters the same ones in
``pyproject.toml``. Our own warnings always show.
"""

from __future__ import annotations

import logging.config
import sys
import warnings
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# (message regex, category, why we cannot act on it)
THIRD_PARTY_WARNINGS: tuple[tuple[str, type[Warning], str], ...] = (
    (
        r"register_new_resolver\(\) is deprecated",
        UserWarning,
        "Kedro's own OmegaConfigLoader registers its resolvers this way",
    ),
    (
        r"PySpark does not yet fully support pandas",
        FutureWarning,
        "PySpark 4.3 with pandas 3; the project's Spark code passes its tests on both",
    ),
    (
        r"One or more dataset names contain '\.'",
        UserWarning,
        "Kedro namespaces name datasets '<namespace>.<name>' themselves",
    ),
)


def filter_third_party_warnings() -> None:
    """Silence the warnings listed in ``THIRD_PARTY_WARNINGS``, and nothing else."""
    for message, category, _ in THIRD_PARTY_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)


def quiet_logging(log_file: Path, console_logger: str) -> None:
    """Every record at INFO and above goes to ``log_file``; the console shows ``console_logger``.

    Set once, after Kedro has configured its logging on import: sessions do not reconfigure it.
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": LOG_FORMAT}, "bare": {"format": "%(message)s"}},
            "handlers": {
                "file": {
                    "class": "logging.FileHandler",
                    "filename": str(log_file),
                    "mode": "w",
                    "encoding": "utf-8",
                    "formatter": "plain",
                },
                "console": {
                    "class": "logging.StreamHandler",
                    "stream": "ext://sys.stdout",
                    "formatter": "bare",
                },
            },
            "loggers": {
                console_logger: {"handlers": ["console"], "level": "INFO"},
                "py4j": {"level": "WARNING"},
                "pyspark": {"level": "WARNING"},
            },
            "root": {"handlers": ["file"], "level": "INFO"},
        }
    )


class StepProgress:
    """A live progress bar under the replay's step lines, on a terminal only.

    Rich redraws the bar below whatever is printed while it runs, so the console logger is pointed
    at Rich's stdout proxy for the duration. Off a terminal (CI, a pipe, a file) it does nothing
    and the step lines alone say where the replay is.
    """

    def __init__(self, console_logger: str, console: Console | None = None) -> None:
        self._logger = logging.getLogger(console_logger)
        self._console = console or Console()
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._streams: list[tuple[logging.StreamHandler, Any]] = []

    def __enter__(self) -> StepProgress:
        if self._console.is_terminal:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self._console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("replay", total=None)
            for handler in self._logger.handlers:
                if isinstance(handler, logging.StreamHandler):
                    # sys.stdout is now Rich's proxy: lines print above the bar
                    self._streams.append((handler, handler.setStream(sys.stdout)))
        return self

    def update(self, done: int, planned: int, description: str) -> None:
        """Step ``done`` of ``planned`` is starting (``description``: pipeline and run date)."""
        if self._progress is not None and self._task is not None:
            self._progress.update(
                self._task, completed=done - 1, total=planned, description=description
            )
            self._progress.refresh()  # a step takes seconds to minutes: draw it now

    def __exit__(self, *exc_info: object) -> None:
        if self._progress is not None:
            self._progress.stop()
        for handler, stream in self._streams:
            handler.setStream(stream)
