"""What every pipeline run is a function of: ``run_date`` and validated parameters.

Airflow passes ``kedro run --params run_date=<logical date>``; each pipeline parses it here, once,
into a :class:`RunDate`, and checks its own parameter block into a frozen dataclass with
:class:`Problems`, so a bad value stops the run before any data is read, with an error that names
every key at fault. Leaf helpers then take plain values (a ``date``, an ``int``), never a config
dict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

__all__ = ["ConfigError", "Problems", "RunDate", "is_int", "is_number", "is_probability"]


class ConfigError(ValueError):
    """Parameters cannot give a valid run; the message names every key at fault and why."""


@dataclass(frozen=True)
class RunDate:
    """The logical date of a run (Airflow's ``ds``): what the run may see and how it is named."""

    day: date

    @classmethod
    def parse(cls, value: Any) -> RunDate:
        """``value`` (``params:run_date``) as a :class:`RunDate`; :class:`ConfigError` if it is
        not an ISO date."""
        if isinstance(value, date):
            return cls(value)
        try:
            return cls(date.fromisoformat(str(value)))
        except ValueError:
            raise ConfigError(f"run_date {value!r} is not an ISO date (YYYY-MM-DD)") from None

    @property
    def iso(self) -> str:
        return self.day.isoformat()

    @property
    def month(self) -> str:
        """``YYYY-MM``: the landing extract this run processes up to."""
        return self.day.strftime("%Y-%m")


class Problems:
    """Collects what is wrong with one parameter block, then raises them together.

    ``section`` is the block's key (``monitoring_config``); every message is prefixed with the full
    key, so ``check(..., "lookback_days", "must be an int >= 1")`` reads
    ``monitoring_config.lookback_days must be an int >= 1, got 0``.
    """

    def __init__(self, section: str, config: dict[str, Any] | None) -> None:
        self.section = section
        self.config = config if isinstance(config, dict) else {}
        self.messages: list[str] = [] if isinstance(config, dict) else [f"{section} is missing"]

    def check(self, key: str, valid: Callable[[Any], bool], requirement: str) -> Any:
        """The value under ``key``; records ``requirement`` unless ``valid(value)`` holds."""
        value = self.config.get(key)
        try:
            ok = bool(valid(value))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            self.add(f"{key} {requirement}, got {value!r}")
        return value

    def add(self, message: str) -> None:
        self.messages.append(f"{self.section}.{message}")

    def raise_if_any(self) -> None:
        if self.messages:
            raise ConfigError(f"invalid {self.section}:\n  - " + "\n  - ".join(self.messages))


def is_int(low: int | None = None) -> Callable[[Any], bool]:
    """A check for ``Problems.check``: an int (not a bool), at least ``low`` if given."""
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and (low is None or v >= low)


def is_number(low: float | None = None, high: float | None = None) -> Callable[[Any], bool]:
    """A check for ``Problems.check``: an int or float (not a bool) in ``[low, high]``."""
    return lambda v: (
        isinstance(v, int | float)
        and not isinstance(v, bool)
        and (low is None or v >= low)
        and (high is None or v <= high)
    )


def is_probability(v: Any) -> bool:
    """A check for ``Problems.check``: a number strictly between 0 and 1."""
    return is_number()(v) and 0 < v < 1
