from datetime import date

import pytest

from readmit_kedro.run_context import ConfigError, Problems, RunDate, is_int, is_probability


def test_run_date_is_parsed_once_into_its_day_and_month():
    run = RunDate.parse("2008-03-31")
    assert (run.day, run.iso, run.month) == (date(2008, 3, 31), "2008-03-31", "2008-03")
    assert RunDate.parse(date(2008, 3, 31)) == run


def test_a_bad_run_date_names_the_key():
    with pytest.raises(ConfigError, match=r"run_date '2008-13-01' is not an ISO date"):
        RunDate.parse("2008-13-01")


def test_problems_name_every_key_at_fault_together():
    problems = Problems("monitoring_config", {"lookback_days": 0, "threshold": 1.5})
    assert problems.check("lookback_days", is_int(1), "must be an int >= 1") == 0
    problems.check("threshold", is_probability, "must be in (0, 1)")
    problems.check("absent", is_int(), "must be an int")
    with pytest.raises(ConfigError) as error:
        problems.raise_if_any()
    message = str(error.value)
    assert "monitoring_config.lookback_days must be an int >= 1, got 0" in message
    assert "monitoring_config.threshold must be in (0, 1), got 1.5" in message
    assert "monitoring_config.absent must be an int, got None" in message


def test_a_missing_block_is_named():
    with pytest.raises(ConfigError, match="monitoring_config is missing"):
        Problems("monitoring_config", None).raise_if_any()


def test_valid_blocks_pass():
    problems = Problems("x", {"n": 3})
    problems.check("n", is_int(1), "must be an int >= 1")
    problems.raise_if_any()
