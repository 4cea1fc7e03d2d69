"""Config validation: every bad setting stops the run before any data is read, saying why."""

from __future__ import annotations

import copy

import pytest

from readmit_kedro.pipelines.training.config import TrainingConfigError, validate_training_config
from readmit_kedro.pipelines.training.modeling import ESTIMATORS


def _plan(params: dict, **changes) -> dict:
    """Build the plan from the project's dev parameters after applying dotted-key ``changes``."""
    params = copy.deepcopy(params)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = params
        for key in parents:
            node = node[key]
        node[leaf] = value
    return validate_training_config(
        params["run_date"],
        params["temporal_splits"],
        params["model_config"],
        params["training_config"],
        **{name: params[name] for name in ESTIMATORS},
    )


def test_project_config_gives_the_design_windows(dev_params):
    plan = _plan(dev_params)
    assert plan["windows"] == {
        "train": {"start_year": 1999, "end_year": 2005},
        "test": {"start_year": 2006, "end_year": 2007},
        "oot": {"start_year": 2008, "end_year": 2008},
    }
    assert plan["algorithms"] == list(ESTIMATORS)


def test_relative_windows_follow_run_date(dev_params):
    design = _plan(dev_params)["windows"]
    assert _plan(dev_params, temporal_splits__mode="relative")["windows"] == design
    later = _plan(dev_params, temporal_splits__mode="relative", run_date="2012-03-01")
    assert later["windows"]["train"] == {"start_year": 2003, "end_year": 2009}
    assert later["windows"]["oot"] == {"start_year": 2012, "end_year": 2012}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"training_config__algorithms": ["logistic_regression", "lightgbm"]},
         r"unknown algorithm\(s\) \['lightgbm'\]"),
        ({"temporal_splits__absolute__test": {"start_year": 2005, "end_year": 2007}},
         "train 1999-2005 overlaps or follows test 2005-2007"),
        ({"temporal_splits__absolute__oot": {"start_year": 2004, "end_year": 2004}},
         "test 2006-2007 overlaps or follows oot 2004-2004"),
        ({"temporal_splits__absolute__train": {"start_year": 2005, "end_year": 1999}},
         "window train starts after it ends"),
        ({"temporal_splits__mode": "rolling"}, "temporal_splits.mode must be one of"),
        ({"run_date": "2007-06-30"}, r"window oot \(2008-2008\) starts after run_date's year 2007"),
        ({"run_date": "31/12/2008"}, "is not an ISO date"),
        ({"model_config__cv_folds": 1}, "model_config.cv_folds is invalid"),
        ({"training_config__champion__metric": "accuracy"}, "champion.metric must be one of"),
        ({"training_config__prediction_threshold": 1.5}, "prediction_threshold must be in"),
        ({"xgboost__search_space__max_dept": {"randint": [2, 8]}},
         "xgboost: unknown xgboost parameter 'max_dept'"),
        ({"random_forest__search_space__max_depth": {"randint": [8, 2]}},
         r"random_forest: search_space.max_depth: randint needs low < high"),
        ({"logistic_regression__estimator": "svm"}, "logistic_regression: unknown estimator 'svm'"),
        ({"training_config__external_memory__enabled": "yes"},
         "training_config.external_memory.enabled must be auto, true or false, got 'yes'"),
        ({"training_config__external_memory__enabled": 1}, "enabled must be auto, true or false"),
        ({"training_config__external_memory__batch_rows": 0},
         "training_config.external_memory.batch_rows must be an int >= 1, got 0"),
        ({"training_config__external_memory__max_in_memory_rows": 2.5e5},
         "external_memory.max_in_memory_rows must be an int >= 1"),
        ({"training_config__external_memory": None}, "training_config.external_memory is missing"),
    ],
)  # fmt: skip
def test_invalid_config_fails_with_a_clear_message(dev_params, changes, message):
    with pytest.raises(TrainingConfigError, match=message):
        _plan(dev_params, **changes)


def test_all_problems_are_reported_at_once(dev_params):
    with pytest.raises(TrainingConfigError) as error:
        _plan(dev_params, model_config__n_iter_search=0, training_config__algorithms=[])
    assert "n_iter_search" in str(error.value) and "non-empty list" in str(error.value)
