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
import warnings
from pathlib import Path

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
