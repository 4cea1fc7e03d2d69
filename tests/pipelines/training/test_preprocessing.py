"""Gold joining, temporal windows and the train-only preprocessor."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from readmit_kedro.pipelines.training.preprocessing import (
    GoldDataError,
    fit_preprocessor,
    join_gold,
    split_windows,
    transform_window,
)

PLAN = {
    "run_date": "2008-12-31",
    "label_horizon_days": 30,
    "windows": {
        "train": {"start_year": 1999, "end_year": 2005},
        "test": {"start_year": 2006, "end_year": 2007},
        "oot": {"start_year": 2008, "end_year": 2008},
    },
}
PREPROCESSING = {"rare_category_min_frequency": 0.01, "feature_selection_c": 0.05}


@pytest.fixture(scope="module")
def gold(small_gold) -> pd.DataFrame:
    return join_gold(*small_gold)


def _at(gold: pd.DataFrame, dates: list[str], stay: float = 1.0) -> pd.DataFrame:
    rows = gold.iloc[: len(dates)].copy()
    rows["admission_date"] = pd.to_datetime(dates)
    rows["time_in_hospital"] = stay
    return rows


def test_year_boundaries_put_new_year_s_eve_in_train_and_new_year_in_test(gold):
    rows = _at(gold, ["2005-12-31", "2006-01-01", "2007-12-31", "2008-01-01"])
    windows = split_windows(rows, PLAN)
    assert windows["train"]["encounter_id"].tolist() == [rows["encounter_id"].iloc[0]]
    assert windows["test"]["encounter_id"].tolist() == rows["encounter_id"].iloc[1:3].tolist()
    assert windows["oot"]["encounter_id"].tolist() == [rows["encounter_id"].iloc[3]]


def test_encounters_without_a_settled_label_are_left_out(gold):
    # admitted 11-29 + 2 days = discharged 12-01, + 30 days = run_date: settled; a day later: not.
    rows = _at(gold, ["2008-11-29", "2008-11-30"], stay=2.0)
    windows = split_windows(rows, PLAN)
    assert windows["oot"]["encounter_id"].tolist() == [rows["encounter_id"].iloc[0]]


def test_windows_cover_the_history_without_overlap(gold):
    windows = split_windows(gold, PLAN)
    ids = [set(frame["encounter_id"]) for frame in windows.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert windows["train"]["admission_date"].max() < pd.Timestamp("2006-01-01")
    assert sum(map(len, ids)) > 0.9 * len(gold)


def test_join_refuses_broken_gold(small_gold):
    features, labels = small_gold
    with pytest.raises(GoldDataError, match=r"lacks contract columns \['race'\]"):
        join_gold(features.drop(columns="race"), labels)
    with pytest.raises(GoldDataError, match="is empty"):
        join_gold(features.iloc[:0], labels.iloc[:0])
    with pytest.raises(GoldDataError, match=f"{len(labels) - 1} label rows"):
        join_gold(features, labels.iloc[1:])
    with pytest.raises(GoldDataError, match="not one row per encounter_id"):
        join_gold(pd.concat([features, features.iloc[:1]]), labels)


def test_preprocessor_learns_from_train_only_and_survives_new_categories(gold):
    windows = split_windows(gold, PLAN)
    train = windows["train"]
    preprocessor = fit_preprocessor(train, PREPROCESSING, feature_selection=False, seed=0)
    processed = transform_window(preprocessor, train)
    numeric = preprocessor.named_steps["encode"].named_transformers_["num"]
    scaler = numeric.named_steps["standardscaler"]
    assert np.isclose(scaler.mean_[0], train["age_years"].mean())  # train statistics only
    assert abs(processed["num__age_years"].mean()) < 1e-9

    unseen = (
        windows["oot"]
        .head(5)
        .assign(medical_specialty="Specialty-Unheard-Of", num_medications=np.nan)
    )
    out = transform_window(preprocessor, unseen)
    names = preprocessor.get_feature_names_out()
    assert not out[list(names)].isna().any().any()
    infrequent = [n for n in names if n.startswith("cat__medical_specialty_infrequent")]
    assert infrequent and (out[infrequent[0]] == 1).all()
    assert list(out.columns[:3]) == ["encounter_id", "patient_nbr", "admission_date"]


def test_feature_selection_keeps_fewer_columns(gold):
    train = split_windows(gold, PLAN)["train"]
    full = fit_preprocessor(train, PREPROCESSING, feature_selection=False, seed=0)
    selected = fit_preprocessor(train, PREPROCESSING, feature_selection=True, seed=0)
    kept = selected.get_feature_names_out()
    assert 0 < len(kept) < len(full.get_feature_names_out())
    assert set(kept) <= set(full.get_feature_names_out())
    assert transform_window(selected, train).shape[1] == len(kept) + 4  # keys and the target
