"""How this run's gold rows differ from what the model saw in training, counted for the run summary.

Rows are scored whatever they hold: the bundle's preprocessor imputes missing values, sends
categories it never saw to its "infrequent" column and scales any finite number. What the run
reports is how many rows needed that, per column. What the model saw is read from the fitted
bundle itself (the one-hot encoders' categories, the scalers' means and deviations), so the
counts always refer to the model that scored the rows.

One repair happens here: an infinite value is not a measurement, and scikit-learn's imputer
rejects it, so it is scored as missing (and counted as such).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from readmit_kedro.model.calibration import CalibratedModel
from readmit_kedro.model.compiled import Columns, as_floats
from readmit_kedro.model.encoding import FrequentCategoryEncoder, is_known


@dataclass(frozen=True)
class TrainingProfile:
    """Per input column: the categories the model was fitted on, or the train mean and scale."""

    categories: dict[str, frozenset[Any]] = field(default_factory=dict)
    scales: dict[str, tuple[float, float]] = field(default_factory=dict)


def training_profile(bundle: Any) -> TrainingProfile:
    """What the bundle's fitted ColumnTransformers learned about each input column.

    Columns the bundle encodes some other way are simply absent (their checks report nothing).
    """
    profile = TrainingProfile()
    for transformer in _column_transformers(bundle):
        for _, step, columns in transformer.transformers_:
            if isinstance(step, str) or not all(isinstance(c, str) for c in columns):
                continue  # "drop"/"passthrough", or columns chosen by position
            names = list(columns)  # the names each step sees, as the previous step outputs them
            for estimator in [s for _, s in step.steps] if isinstance(step, Pipeline) else [step]:
                if isinstance(estimator, OneHotEncoder | FrequentCategoryEncoder):
                    categories = map(frozenset, estimator.categories_)
                    profile.categories.update(zip(names, categories, strict=True))
                elif isinstance(estimator, StandardScaler) and estimator.with_mean:
                    fitted = zip(names, estimator.mean_, estimator.scale_, strict=True)
                    profile.scales.update(
                        (name, (float(mean), float(scale)))
                        for name, mean, scale in fitted
                        if name in columns  # not the missing-value indicators added on the way
                    )
                try:
                    names = list(estimator.get_feature_names_out(names))
                except (AttributeError, ValueError):
                    break  # a step that cannot name its outputs: later steps cannot be mapped
    return profile


def check_inputs(
    features: pd.DataFrame, profile: TrainingProfile, extreme_z: float
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``features`` ready to score (infinities made missing) and the counts for the run summary.

    Counts per column, and of rows with at least one such value: missing values; categories not
    seen in training; finite numbers more than ``extreme_z`` training standard deviations from
    the training mean; infinite numbers (scored as missing).
    """
    numeric = _numbers(features)
    missing = {  # a number's NA is NaN once converted: np.isnan skips pandas' per-column isna
        column: np.isnan(numeric[column])
        if column in numeric
        else features[column].isna().to_numpy()
        for column in features
    }
    infinite = {column: np.isinf(values) for column, values in numeric.items()}
    unseen = {
        column: ~missing[column] & ~is_known(features[column], seen)
        for column, seen in profile.categories.items()
        if column in features
    }
    extreme = {
        column: _far_out(numeric[column], *profile.scales[column], extreme_z)
        for column in profile.scales
        if column in numeric
    }
    rows = len(features)
    report = {
        "missing_values": _counts(missing, rows),
        "unseen_categories": {**_counts(unseen, rows), "checked_columns": sorted(unseen)},
        "extreme_values": {
            **_counts(extreme, rows), "checked_columns": sorted(extreme), "threshold_z": extreme_z,
        },
        "infinite_values": {**_counts(infinite, rows), "scored_as": "missing"},
    }  # fmt: skip
    return _repaired(features, numeric, infinite), report


def scorable(features: Columns) -> Columns:
    """``features`` as :func:`check_inputs` returns them (infinities made missing), without the
    counts: the service has no run summary (one row: 0.9 ms instead of 4.9 ms, load 5.3). A
    mapping of column arrays (the service's rows, no DataFrame built) comes back as a dict."""
    numeric = _numbers(features)
    return _repaired(features, numeric, {c: np.isinf(v) for c, v in numeric.items()})


def _numbers(features: Columns) -> dict[str, np.ndarray]:
    """The numeric (not boolean) columns as float64: what ``select_dtypes("number")`` keeps."""
    return {
        column: as_floats(values)
        for column, values in features.items()
        if pd.api.types.is_numeric_dtype(values.dtype)
        and not pd.api.types.is_bool_dtype(values.dtype)
    }


def _repaired(
    features: Columns, numeric: dict[str, np.ndarray], infinite: dict[str, np.ndarray]
) -> Columns:
    repaired = {
        column: np.where(flags, np.nan, numeric[column])
        for column, flags in infinite.items()
        if flags.any()
    }
    if not repaired:
        return features
    return (
        features.assign(**repaired)
        if isinstance(features, pd.DataFrame)
        else {**features, **repaired}
    )


def _far_out(values: np.ndarray, mean: float, scale: float, z: float) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # inf - inf: infinite values are counted on their own
        return np.isfinite(values) & (np.abs(values - mean) > z * scale)


def _counts(flags: dict[str, np.ndarray], rows: int) -> dict[str, Any]:
    any_flag = np.zeros(rows, dtype=bool)
    for column_flags in flags.values():
        any_flag |= column_flags
    return {
        "rows": int(any_flag.sum()),
        "by_column": {column: int(f.sum()) for column, f in sorted(flags.items()) if f.any()},
    }


def _column_transformers(estimator: Any) -> Iterator[ColumnTransformer]:
    if isinstance(estimator, CalibratedModel):
        yield from _column_transformers(estimator.model)
    elif isinstance(estimator, Pipeline):
        for _, step in estimator.steps:
            yield from _column_transformers(step)
    elif isinstance(estimator, ColumnTransformer):
        yield estimator
