"""The fast one-hot encoder must encode exactly as the scikit-learn encoder it replaces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.preprocessing import OneHotEncoder

from readmit_kedro.model.encoding import FrequentCategoryEncoder, is_known


@pytest.fixture
def frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    train = pd.DataFrame(
        {
            "race": rng.choice(["Caucasian", "AfricanAmerican", "Asian", "Other"], 2000,
                               p=[0.7, 0.25, 0.004, 0.046]),
            "payer": rng.choice(["MC", "HM", "SP", "CM"], 2000, p=[0.5, 0.3, 0.195, 0.005]),
        }
    )  # fmt: skip
    scored = pd.DataFrame(
        {
            "race": ["Asian", "Caucasian", "Martian", None, "Other"],
            "payer": ["SP", "??", "MC", "HM", None],
        }
    )
    return train, scored


def test_encodes_like_sklearn_onehot_with_infrequent_bucket(frames):
    train, scored = frames  # both features have a rare category, so sklearn too has the bucket
    ours = FrequentCategoryEncoder(min_frequency=0.01).fit(train)
    reference = OneHotEncoder(
        handle_unknown="infrequent_if_exist", min_frequency=0.01, sparse_output=False
    ).fit(train.fillna("Missing"))
    # None is missing: ours sends it to the infrequent column, as sklearn does an unknown value.
    expected = reference.transform(scored.fillna("never-seen"))
    np.testing.assert_array_equal(ours.transform(scored), expected)
    np.testing.assert_array_equal(ours.transform(train), reference.transform(train))
    assert [list(c) for c in ours.categories_] == [list(c) for c in reference.categories_]
    names = list(ours.get_feature_names_out())
    assert "race_Asian" not in names and "race_infrequent" in names  # 0.4% < 1%: infrequent
    assert len(names) == ours.transform(scored).shape[1]


def test_without_rare_categories_every_value_gets_a_column(frames):
    train, scored = frames
    encoder = FrequentCategoryEncoder().fit(train)
    out = encoder.transform(scored)
    assert out.sum(axis=1).tolist() == [2.0] * len(scored)  # one hot per feature, always
    assert "race_Asian" in encoder.get_feature_names_out()


def test_missing_input_column_is_named(frames):
    train, scored = frames
    encoder = FrequentCategoryEncoder().fit(train)
    with pytest.raises(ValueError, match=r"\['payer'\]"):
        encoder.transform(scored[["race"]])


def test_is_known_treats_missing_as_unknown():
    values = pd.Series(["a", None, "c", "b"], dtype="str")
    assert is_known(values, {"a", "b"}).tolist() == [True, False, False, True]
    assert is_known(pd.Series(["a", "b"], dtype=object), ["b"]).tolist() == [False, True]
