"""Exact SHAP contributions per gold feature, for monitoring's global importance.

Each explainer gives, per encounter, one contribution per input of the estimator (the
preprocessor's encoded columns) plus a bias last; they add up to the estimator's raw score before
calibration (the calibrator is monotone, so rankings hold for the calibrated probability):

* XGBoost: TreeSHAP from XGBoost's own ``pred_contribs`` (:class:`~.explain.TreeExplainer`),
  on the log-odds.
* Random forest: TreeSHAP of the ``shap`` package (path-dependent, exact); a forest's raw score is
  its own P(readmitted), the mean of its trees' leaf shares, so there the amounts are probabilities.
* Logistic regression: linear SHAP on the log-odds, ``coef * (x - training mean)`` on the encoded
  inputs, with bias ``intercept + coef . training mean``. It is exact under feature independence
  (the interventional SHAP of a linear model); correlated inputs share credit as if they were
  not. The training means are the reference profile's ``input_means`` (training saves them).

A gold feature's contribution is the sum of its encoded columns' (one-hot columns, a numeric
column and its missing indicator): SHAP values add, so this is the feature's own SHAP value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from readmit_kedro.model.calibration import uncalibrated
from readmit_kedro.model.compiled import CompiledBundle
from readmit_kedro.model.explain import TreeExplainer
from readmit_kedro.schema import CATEGORICAL_FEATURES, NUMERIC_FEATURES

_MISSING_INDICATOR = "missingindicator_"


class Explainer(Protocol):
    names: tuple[str, ...]

    def contributions(self, encoded: np.ndarray) -> np.ndarray: ...

    def raw_score(self, encoded: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class LinearExplainer:
    """Linear SHAP of a logistic-regression bundle against the training means of its inputs."""

    model: LogisticRegression
    names: tuple[str, ...]
    means: np.ndarray

    def contributions(self, encoded: np.ndarray) -> np.ndarray:
        """One row per encounter: each input's contribution, then the bias (last column)."""
        coef = self.model.coef_[0]
        bias = self.model.intercept_[0] + coef @ self.means
        inputs = coef * (encoded - self.means)
        return np.column_stack([inputs, np.full(len(encoded), bias)])

    def raw_score(self, encoded: np.ndarray) -> np.ndarray:
        return self.model.decision_function(encoded)


@dataclass(frozen=True)
class ForestExplainer:
    """TreeSHAP of a random-forest bundle, by the ``shap`` package."""

    model: RandomForestClassifier
    names: tuple[str, ...]

    def contributions(self, encoded: np.ndarray) -> np.ndarray:
        """One row per encounter: each input's contribution to P(class 1), then the bias."""
        import shap  # here: importing it (numba) takes seconds, and only a forest needs it

        explainer = shap.TreeExplainer(self.model)
        positive = list(self.model.classes_).index(1)
        values = np.asarray(explainer.shap_values(encoded, check_additivity=True))[..., positive]
        bias = np.asarray(explainer.expected_value).reshape(-1)[positive]
        return np.column_stack([values, np.full(len(encoded), bias)])

    def raw_score(self, encoded: np.ndarray) -> np.ndarray:
        positive = list(self.model.classes_).index(1)
        return self.model.predict_proba(encoded)[:, positive]


def explainer_of(bundle: Any, input_means: dict[str, Any] | None) -> Explainer | str:
    """The bundle's explainer, or why its importance is not available.

    ``input_means`` is the reference profile's ``{"names", "values"}`` for the same bundle (None
    when the profile has none, or describes another model): only the linear explainer needs it.
    """
    tree = TreeExplainer.of(bundle)
    if tree is not None:
        return tree
    preprocess, estimator = _split(bundle)
    if isinstance(estimator, RandomForestClassifier):
        return ForestExplainer(estimator, _names(preprocess))
    if not isinstance(estimator, LogisticRegression):
        return f"no exact SHAP explainer for {type(estimator).__name__} in this project"
    names = _names(preprocess)
    if input_means is None or list(input_means["names"]) != list(names):
        return (
            "the reference profile holds no training means of this model's inputs "
            "(linear SHAP needs them; the next training run writes them)"
        )
    means = np.asarray(input_means["values"], dtype=np.float64)
    return LinearExplainer(estimator, names, means)


def method_of(explainer: Explainer) -> str:
    """How the contributions were computed and on what scale, as the report says it."""
    if isinstance(explainer, TreeExplainer):
        return "TreeSHAP (XGBoost pred_contribs), log-odds"
    if isinstance(explainer, ForestExplainer):
        return "TreeSHAP (shap package, path-dependent), probability"
    return "linear SHAP against the training means, assuming independent features; log-odds"


def input_means(bundle: Any, training_rows: Iterable[pd.DataFrame]) -> dict[str, Any]:
    """Mean of each encoded input over the training rows: linear SHAP's reference point.

    The rows come in batches (one per gold partition), so the training window is never held
    whole; only the sums are.
    """
    preprocess, _ = _split(bundle)
    total, rows = 0.0, 0
    for batch in training_rows:
        if len(batch):
            total = total + encode(bundle, batch).sum(axis=0)
            rows += len(batch)
    return {"names": list(_names(preprocess)), "values": (np.asarray(total) / rows).tolist()}


def encode(bundle: Any, features: pd.DataFrame) -> np.ndarray:
    """The final estimator's inputs for gold rows, as scoring encodes them (:class:`CompiledBundle`)."""
    compiled = CompiledBundle.of(bundle)
    if compiled is None:
        raise TypeError(f"the bundle ({type(bundle).__name__}) is not a scikit-learn Pipeline")
    return np.asarray(compiled.encode(features), dtype=np.float64)


def feature_contributions(explainer: Explainer, encoded: np.ndarray) -> pd.DataFrame:
    """Per encounter (row) and gold feature (column): the sum of its inputs' contributions."""
    inputs = explainer.contributions(encoded)[:, :-1]
    frame = pd.DataFrame(inputs, columns=[gold_feature(n) for n in explainer.names])
    return frame.T.groupby(level=0, sort=False).sum().T


def gold_feature(encoded_name: str) -> str:
    """The gold feature an encoded input comes from (``cat__race_Caucasian`` -> ``race``)."""
    kind, _, rest = encoded_name.partition("__")
    if kind == "num" and rest.removeprefix(_MISSING_INDICATOR) in NUMERIC_FEATURES:
        return rest.removeprefix(_MISSING_INDICATOR)
    # the longest name that prefixes it: a feature may prefix another (diag_1_group, diag_1_code)
    owners = [c for c in CATEGORICAL_FEATURES if rest.startswith(f"{c}_")]
    if kind != "cat" or not owners:
        raise ValueError(f"{encoded_name!r} is not an input of the gold features")
    return max(owners, key=len)


def _split(bundle: Any) -> tuple[Pipeline, Any]:
    inner = uncalibrated(bundle)
    if not isinstance(inner, Pipeline):
        raise TypeError(f"the bundle ({type(inner).__name__}) is not a scikit-learn Pipeline")
    return inner[:-1], inner.steps[-1][1]


def _names(preprocess: Pipeline) -> tuple[str, ...]:
    return tuple(str(n) for n in preprocess.get_feature_names_out())
