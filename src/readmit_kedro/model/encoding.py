"""One-hot encoding of the gold categorical features, fast enough for batch scoring.

scikit-learn's ``OneHotEncoder`` looks categories up with Python dicts on object arrays, which was
most of the scoring time. This encoder does the lookup with Arrow's hash kernel
(``pyarrow.compute.index_in``) on the strings pandas already stores in Arrow, then sets the ones
with NumPy, about 5x faster (figures in README, "Measured figures"; ``benchmarks.bench_inference``
times it).

Behaviour matches the ``OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=f)``
it replaces: categories seen in fewer than ``f`` of the training rows, categories first seen
after training and missing values all land in one ``<column>_infrequent`` column, so a new
hospital code cannot break inference. One difference: every feature has that column, even when
no training category was rare (scikit-learn would then encode an unseen value as all zeros).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

INFREQUENT = "infrequent"


class FrequentCategoryEncoder(TransformerMixin, BaseEstimator):
    """One column per category seen in at least ``min_frequency`` of train rows, plus one
    ``infrequent`` column per feature for everything else (rare, unseen or missing).

    ``categories_`` lists every category seen in training, per feature (as ``OneHotEncoder``
    does, so "unseen in training" keeps its meaning); ``frequent_categories_`` the encoded ones.
    """

    def __init__(self, min_frequency: float | None = None) -> None:
        self.min_frequency = min_frequency

    def fit(self, X: pd.DataFrame, y: Any = None) -> FrequentCategoryEncoder:
        if not isinstance(X, pd.DataFrame):
            raise TypeError("FrequentCategoryEncoder needs a DataFrame with named columns")
        floor = (self.min_frequency or 0) * len(X)
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        self.categories_, self.frequent_categories_ = [], []
        for column in X.columns:
            counts = X[column].dropna().astype(str).value_counts()
            self.categories_.append(np.sort(counts.index.to_numpy(dtype=object)))
            self.frequent_categories_.append(
                np.sort(counts[counts >= floor].index.to_numpy(dtype=object))
            )
        return self

    def transform(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "frequent_categories_")
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ValueError(f"columns {missing} are missing from the rows to encode")
        widths = [len(c) + 1 for c in self.frequent_categories_]
        out = np.zeros((len(X), sum(widths)), dtype="float64")
        rows = np.arange(len(X))
        offset = 0
        for column, frequent, width in zip(
            self.feature_names_in_, self.frequent_categories_, widths, strict=True
        ):
            position = pc.index_in(
                _as_arrow_strings(X[column]), value_set=pa.array(frequent, pa.large_string())
            )
            codes = position.fill_null(width - 1).to_numpy(zero_copy_only=False)
            out[rows, offset + codes] = 1.0
            offset += width
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "frequent_categories_")
        return np.asarray(
            [
                f"{column}_{category}"
                for column, frequent in zip(
                    self.feature_names_in_, self.frequent_categories_, strict=True
                )
                for category in [*frequent, INFREQUENT]
            ],
            dtype=object,
        )


def is_known(values: pd.Series, categories: Any) -> np.ndarray:
    """Per row: is the value one of ``categories``? (Arrow's hash kernel; missing is False.)"""
    known = pc.is_in(
        _as_arrow_strings(values), value_set=pa.array(list(categories), pa.large_string())
    )
    return known.fill_null(False).to_numpy(zero_copy_only=False)


def _as_arrow_strings(values: pd.Series) -> pa.Array:
    """The column as Arrow large strings: free for pandas' Arrow-backed str dtype."""
    array = pa.array(values, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array if pa.types.is_large_string(array.type) else pc.cast(array, pa.large_string())
