"""The quiet console of ``readmit replay``: its own lines on screen, every record in the log file."""

from __future__ import annotations

import logging
import warnings

from readmit_kedro.commands.console import filter_third_party_warnings, quiet_logging


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
