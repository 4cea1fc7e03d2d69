"""`readmit replay` end to end on small synthetic data: history, first training, months of 2008
with drift injected, monitoring that sees it, and a retraining decision acted on."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from readmit_kedro.commands import cli

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPLAY = [
    "replay", "--env", "dev", "--synthetic-rows", "20000",
    "--last-month", "2008-04", "--drift-from", "2008-02",
]  # fmt: skip


def test_replay_detects_injected_drift_and_reacts(kedro_project, spark, restored_logging):
    result = CliRunner().invoke(cli, REPLAY)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Champion history:" in out and "Predictions per admission month (2008):" in out
    for month in ("2008-01", "2008-02", "2008-03", "2008-04"):
        assert f"{month}: " in out  # every month of the replay was scored
    monitoring = out[out.index("Monitoring (month end") : out.index("Retrained on:")]
    march = next(line for line in monitoring.splitlines() if "2008-03-31" in line)
    assert "data drift: PSI of feature" in march  # the injected coding change and longer stays
    assert ": True " in march  # ... and recommends retraining, which the replay acts on before
    # April: a new champion, or a retraining declined by its prerequisite check, with the reason.
    assert "2008-03-31" in out[out.index("Retrained on:") :]
    reports = kedro_project / "data/08_reporting/monitoring/reports"
    assert list(reports.glob("report_2008-03-31*"))
    # A quiet console: one line per pipeline run and the summary; Kedro's lines in the log file.
    assert len(out.splitlines()) < 60, out
    assert "Loading data from" not in out
    assert "Loading data from" in (kedro_project / "logs/replay.log").read_text()

    # Run again, it tells the same year: it starts from an empty state, not from this one's
    # registry (whose champion, trained on later data, would score the first months).
    again = CliRunner().invoke(cli, REPLAY)
    assert again.exit_code == 0, again.output
    assert _story(again.output) == _story(out)


def _story(output: str) -> list[str]:
    """The replay's summary without what differs between two runs: version stamps and seconds."""
    summary = output[output.index("Models (ROC AUC") :].splitlines()
    return [
        re.sub(r"v\d{8}T\d{12}Z|\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", "*", line)
        for line in summary
        if not re.search(r"\d s in pipelines|wall time", line)
    ]
