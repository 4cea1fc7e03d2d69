"""A scoring bundle split in two: encode the gold rows once, then score (and explain) that matrix.

scikit-learn validates and indexes a DataFrame on every ``transform`` call, ~15 ms for one row:
most of a served request. :class:`CompiledBundle` reads the fitted preprocessor's statistics once
(imputer values and missing-value indicators, scaler means and scales, the category encoder,
the selected columns) and applies them with NumPy, the same float64 operations in the same
order, so the encoded matrix equals scikit-learn's bit for bit (tests/test_compiled.py). A step it
does not know keeps scikit-learn's own ``transform``: never a guess.

The classifier and the calibrator then score the encoded rows exactly as the bundle's
``Pipeline.predict_proba`` would hand them on; the scoring service explains the same matrix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import SelectFromModel
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from readmit_kedro.model.calibration import CalibratedModel, SplineCalibrator, uncalibrated
from readmit_kedro.model.encoding import FrequentCategoryEncoder

# Rows to encode: a DataFrame, or column name -> equal-length 1-D values (NumPy or pandas arrays),
# which spares the service building a DataFrame for a request's few rows.
Columns = pd.DataFrame | Mapping[str, Any]
Encode = Callable[[Columns], np.ndarray]
FEW_ROWS = 64  # up to this many rows, categories are looked up in Python dicts, not by Arrow
Step = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class CompiledBundle:
    """The preprocessor (compiled, or scikit-learn's when it holds an unknown step), the final
    estimator and the calibrator (None: the bundle's probabilities are not calibrated)."""

    encode: Encode  # gold feature rows -> the final estimator's inputs
    estimator: Any
    calibrator: SplineCalibrator | None
    compiled: bool  # False: ``encode`` is scikit-learn's own transform

    @classmethod
    def of(cls, bundle: Any) -> CompiledBundle | None:
        """The split of ``bundle``; None unless it is a scikit-learn Pipeline (maybe calibrated)."""
        calibrator = bundle.calibrator if isinstance(bundle, CalibratedModel) else None
        inner = uncalibrated(bundle)
        if not isinstance(inner, Pipeline):
            return None
        preprocess = inner[:-1]
        encode = compile_preprocessor(preprocess)
        return cls(encode or preprocess.transform, inner.steps[-1][1], calibrator, bool(encode))

    def scores(
        self, encoded: Any, *, with_intervals: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(probability, lower, upper)`` of encoded rows; the bounds are NaN without intervals."""
        raw = self.estimator.predict_proba(encoded)[:, 1]
        if self.calibrator is not None and with_intervals:
            return self.calibrator.predict_with_interval(raw)
        nan = np.full(len(raw), np.nan)
        probability = raw if self.calibrator is None else self.calibrator.predict(raw)
        return probability.astype(np.float64), nan, nan


def compile_preprocessor(preprocess: Pipeline) -> Encode | None:
    """The NumPy form of a fitted preprocessor; None when it holds a step this does not know."""
    steps: list[Step] = []
    first: Encode | None = None
    for _, step in _flat_steps(preprocess):
        if first is None:
            first = _column_transformer(step) if isinstance(step, ColumnTransformer) else None
            if first is None:
                return None
        elif isinstance(step, SelectFromModel):
            kept = np.flatnonzero(step.get_support())
            steps.append(lambda x, kept=kept: x[:, kept])
        else:
            return None
    if first is None:
        return None

    def encode(features: Columns) -> np.ndarray:
        encoded = first(features)
        for step in steps:
            encoded = step(encoded)
        return encoded

    return encode


def _flat_steps(pipeline: Pipeline) -> list[tuple[str, Any]]:
    """Nested Pipelines unrolled (training nests the preprocessor in the bundle)."""
    flat = []
    for name, step in pipeline.steps:
        flat += _flat_steps(step) if isinstance(step, Pipeline) else [(name, step)]
    return flat


def _column_transformer(transformer: ColumnTransformer) -> Encode | None:
    if transformer.sparse_output_:
        return None
    blocks: list[Encode] = []
    for _, step, columns in transformer.transformers_:
        if (isinstance(step, str) and step == "drop") or len(columns) == 0:
            continue  # scikit-learn skips these too
        if isinstance(step, str) or not all(isinstance(c, str) for c in columns):
            return None  # passthrough, or columns chosen by position
        block = _block(step, list(columns))
        if block is None:
            return None
        blocks.append(block)
    return lambda features: np.hstack([block(features) for block in blocks])


def _block(step: Any, columns: list[str]) -> Encode | None:
    """One ColumnTransformer entry: the category encoder, or numeric imputer/scaler steps."""
    if isinstance(step, FrequentCategoryEncoder):
        return _categories(step) if list(step.feature_names_in_) == columns else None
    numeric: list[Step] = []
    for estimator in [s for _, s in step.steps] if isinstance(step, Pipeline) else [step]:
        compiled = _numeric_step(estimator)
        if compiled is None:
            return None
        numeric.append(compiled)

    def block(features: Columns) -> np.ndarray:
        values = np.column_stack([as_floats(features[c]) for c in columns])
        for apply in numeric:
            values = apply(values)
        return values

    return block


def _categories(encoder: FrequentCategoryEncoder) -> Encode:
    """The encoder's own (Arrow) transform, or for a few rows of strings the same lookup in
    Python dicts, without Arrow's per-column set-up: a one-row encode took 4.1 ms instead of
    6.2 ms (load average ~4.5 on 2 cores)."""
    columns = list(encoder.feature_names_in_)
    lookups = [{c: i for i, c in enumerate(f)} for f in encoder.frequent_categories_]
    widths = [len(lookup) + 1 for lookup in lookups]  # + the infrequent column
    starts = np.cumsum([0, *widths[:-1]])

    def encode(features: Columns) -> np.ndarray:
        rows = len(features[columns[0]])
        if rows > FEW_ROWS:
            return encoder.transform(_frame(features, columns))
        values = [features[column].tolist() for column in columns]
        if not all(_is_text_or_missing(v) for column in values for v in column):
            return encoder.transform(_frame(features, columns))  # Arrow casts other values to text
        out = np.zeros((rows, sum(widths)), dtype=np.float64)
        for k, column in enumerate(values):
            infrequent = widths[k] - 1  # also where a missing value goes
            for row, value in enumerate(column):
                found = lookups[k].get(value, infrequent) if isinstance(value, str) else infrequent
                out[row, starts[k] + found] = 1.0
        return out

    return encode


def _frame(features: Columns, columns: list[str]) -> pd.DataFrame:
    """What the encoder's own transform reads (Arrow takes None and NaN alike as missing)."""
    if isinstance(features, pd.DataFrame):
        return features
    return pd.DataFrame({column: features[column] for column in columns})


def as_floats(values: Any) -> np.ndarray:
    """A numeric column (Series, pandas or NumPy array) as float64, NaN where missing."""
    if hasattr(values, "to_numpy"):
        return values.to_numpy(dtype=np.float64, na_value=np.nan)
    return np.asarray(values, dtype=np.float64)


def _is_text_or_missing(value: Any) -> bool:
    return isinstance(value, str) or value is None or value is pd.NA or value != value  # NaN


def _numeric_step(estimator: Any) -> Step | None:
    """SimpleImputer (NaN as missing, missing-only indicators) and StandardScaler; else None."""
    if isinstance(estimator, StandardScaler):
        mean = estimator.mean_ if estimator.with_mean else None
        scale = estimator.scale_ if estimator.with_std else None
        return lambda x: _scale(x, mean, scale)
    if (
        isinstance(estimator, SimpleImputer)
        and _is_nan(estimator.missing_values)
        and not np.isnan(estimator.statistics_).any()  # all-missing columns: dropped by sklearn
        and (estimator.indicator_ is None or estimator.indicator_.features == "missing-only")
    ):
        statistics = estimator.statistics_.astype(np.float64)
        flagged = None if estimator.indicator_ is None else estimator.indicator_.features_
        return lambda x: _impute(x, statistics, flagged)
    return None


def _impute(x: np.ndarray, statistics: np.ndarray, flagged: np.ndarray | None) -> np.ndarray:
    if np.isinf(x).any():
        raise ValueError("Input X contains infinity: inference scores it as missing first")
    missing = np.isnan(x)
    imputed = np.where(missing, statistics, x)
    return imputed if flagged is None else np.hstack([imputed, missing[:, flagged]])


def _scale(x: np.ndarray, mean: np.ndarray | None, scale: np.ndarray | None) -> np.ndarray:
    if mean is not None:
        x = x - mean
    return x if scale is None else x / scale


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and np.isnan(value)
