"""The quiet console of ``readmit replay``: its own lines on screen, every record in the log file."""

from __future__ import annotations

import io
import logging
import warnings

from rich.console import Console

from readmit_kedro.commands.console import (
    StepProgress,
    filter_third_party_warnings,
    quiet_logging,
)


def test_kedro_lines_go_to_the_file_and_replay_lines_to_the_console(
    tmp_path, capsys, restored_logging
):
    log_file = tmp_path / "logs" / "replay.log"
    quiet_logging(log_file, console_logger="readmit_kedro.commands.replay")
    logging.getLogger("kedro.io.data_catalog").info("Loading data from gold_features")
    logging.getLogger("readmit_kedro.pipelines.monitoring.alerts").warning("an alert")
    logging.getLogger("readmit_kedro.commands.replay").info("[1/39] data_processing for 2007-12-31")
    logging.getLogger("readmit_kedro.commands.replay").warning("Retraining declined")

    assert capsys.readouterr().out == "[1/39] data_processing for 2007-12-31\nRetraining declined\n"
    written = log_file.read_text()
    for line in ("Loading data from gold_features", "an alert", "[1/39] data_processing"):
        assert line in written


def test_only_the_listed_third_party_warnings_are_silenced():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filter_third_party_warnings()
        for message, category in (
            ("register_new_resolver() is deprecated and will be removed", UserWarning),
            ("PySpark does not yet fully support pandas >= 3.0.0", FutureWarning),
            ("gold_features lacks a column", UserWarning),
        ):
            warnings.warn(message, category, stacklevel=1)
    assert [str(w.message) for w in caught] == ["gold_features lacks a column"]


def test_a_terminal_gets_a_bar_under_the_step_lines(tmp_path, capsys, restored_logging):
    quiet_logging(tmp_path / "replay.log", console_logger="readmit_kedro.commands.replay")
    screen = io.StringIO()
    terminal = Console(file=screen, force_terminal=True, width=100)
    with StepProgress("readmit_kedro.commands.replay", console=terminal) as progress:
        logging.getLogger("readmit_kedro.commands.replay").info("[3/40] inference for 2008-01-31")
        progress.update(3, 40, "inference 2008-01-31")
    shown = screen.getvalue()
    assert "[3/40] inference for 2008-01-31" in shown  # the step line, printed above the bar
    assert "inference 2008-01-31" in shown and "2/40" in shown  # the bar: two steps done
    assert capsys.readouterr().out == ""  # nothing bypassed the bar


def test_off_a_terminal_there_is_no_bar(tmp_path, capsys, restored_logging):
    quiet_logging(tmp_path / "replay.log", console_logger="readmit_kedro.commands.replay")
    pipe = Console(file=io.StringIO(), force_terminal=False)
    with StepProgress("readmit_kedro.commands.replay", console=pipe) as progress:
        progress.update(1, 40, "data_processing 2007-12-31")
        logging.getLogger("readmit_kedro.commands.replay").info("[1/40] data_processing")
    assert pipe.file.getvalue() == ""
    assert capsys.readouterr().out == "[1/40] data_processing\n"
