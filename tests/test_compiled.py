"""The NumPy preprocessor must encode (and the split bundle score) exactly as scikit-learn does."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from xgboost import XGBClassifier

from readmit_kedro.model.calibration import calibrate
from readmit_kedro.model.compiled import FEW_ROWS, CompiledBundle, compile_preprocessor
from readmit_kedro.pipelines.training.preprocessing import fit_preprocessor, join_gold
from readmit_kedro.schema import FEATURE_COLUMNS, NUMERIC_FEATURES, TARGET
from tests.support.gold import make_gold_like

PREPROCESSING = {"rare_category_min_frequency": 0.005, "feature_selection_c": 0.05}


@pytest.fixture(scope="module")
def windows() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train (some numbers missing, so the imputer adds indicators) and rows to encode: missing
    numbers, missing and never-seen categories, and real-shaped rows around them."""
    gold = join_gold(*make_gold_like(4_000, seed=3))
    rng = np.random.default_rng(3)
    train, scored = gold.iloc[:3_000].copy(), gold.iloc[3_000:].copy()
    for frame in (train, scored):
        for column in ("age_years", "num_medications", "charlson"):
            frame.loc[rng.random(len(frame)) < 0.05, column] = np.nan
    scored.loc[scored.index[:40], "number_inpatient"] = np.nan  # never missing in train
    scored.loc[scored.index[::7], "medical_specialty"] = "Never-Seen-Specialty"
    scored.loc[scored.index[::11], "payer_code"] = None
    scored.loc[scored.index[::13], "diag_1_code"] = "V99.9"
    return train, scored


@pytest.mark.parametrize("feature_selection", [False, True])
def test_the_compiled_preprocessor_encodes_as_sklearn_bit_for_bit(windows, feature_selection):
    train, scored = windows
    preprocessor = fit_preprocessor(
        train, PREPROCESSING, feature_selection=feature_selection, seed=0
    )
    imputer = preprocessor[0].named_transformers_["num"][0]
    assert len(imputer.indicator_.features_) == 3  # the indicator columns are exercised

    encode = compile_preprocessor(preprocessor)
    assert encode is not None
    features = scored[list(FEATURE_COLUMNS)]  # Arrow's lookups; a few rows: Python dicts
    for rows in (features, features.iloc[:1], features.iloc[:FEW_ROWS]):
        expected = preprocessor.transform(rows)
        np.testing.assert_array_equal(encode(rows), expected, strict=True)
        np.testing.assert_array_equal(encode(driver_columns(rows)), expected, strict=True)


def driver_columns(frame: pd.DataFrame) -> dict[str, object]:
    """Columns as the service's gold evaluation gives them, without a DataFrame: strings in
    object arrays (None where missing), numbers in float64 arrays (masked Float64 with a null)."""
    return {
        c: np.array([None if pd.isna(v) else v for v in values], dtype=object)
        if c not in NUMERIC_FEATURES
        else pd.array(values, dtype="Float64")
        if values.isna().any()
        else values.to_numpy(dtype=np.float64)
        for c, values in frame.items()
    }


def test_the_split_bundle_scores_as_the_calibrated_bundle(windows):
    train, scored = windows
    preprocessor = fit_preprocessor(train, PREPROCESSING, feature_selection=False, seed=0)
    model = XGBClassifier(n_estimators=20, max_depth=3, n_jobs=1, random_state=0)
    model.fit(preprocessor.transform(train[list(FEATURE_COLUMNS)]), train[TARGET])
    bundle = calibrate(Pipeline([("preprocess", preprocessor), ("model", model)]), train,
                       train[TARGET].to_numpy())  # fmt: skip
    rows = scored[list(FEATURE_COLUMNS)]

    split = CompiledBundle.of(bundle)
    assert split is not None and split.compiled
    encoded = split.encode(rows)
    for got, expected in zip(
        split.scores(encoded, with_intervals=True), bundle.predict_with_interval(rows), strict=True
    ):
        np.testing.assert_array_equal(got, expected, strict=True)
    probability, lower, _ = split.scores(encoded, with_intervals=False)
    np.testing.assert_array_equal(probability, bundle.predict_proba(rows)[:, 1], strict=True)
    assert np.isnan(lower).all()


def test_an_unknown_step_keeps_sklearn_transform(windows):
    train, scored = windows
    numbers = make_pipeline(FunctionTransformer(np.log1p), StandardScaler())
    preprocessor = Pipeline(
        [("encode", ColumnTransformer([("num", numbers, list(NUMERIC_FEATURES[1:4]))]))]
    ).fit(train[list(FEATURE_COLUMNS)])
    assert compile_preprocessor(preprocessor) is None

    bundle = Pipeline([("preprocess", preprocessor), ("model", XGBClassifier(n_estimators=2))])
    bundle.fit(train[list(FEATURE_COLUMNS)], train[TARGET])
    split = CompiledBundle.of(bundle)
    assert split is not None and not split.compiled
    rows = scored[list(FEATURE_COLUMNS)]
    np.testing.assert_array_equal(split.encode(rows), preprocessor.transform(rows))


def test_an_infinite_number_is_refused_as_sklearn_refuses_it(windows):
    train, scored = windows
    preprocessor = fit_preprocessor(train, PREPROCESSING, feature_selection=False, seed=0)
    rows = scored[list(FEATURE_COLUMNS)].iloc[:3].assign(age_years=np.inf)
    with pytest.raises(ValueError, match="infinity"):
        preprocessor.transform(rows)
    with pytest.raises(ValueError, match="infinity"):
        compile_preprocessor(preprocessor)(rows)
