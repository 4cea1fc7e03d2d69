"""Training on a train window larger than the task's memory: XGBoost from Parquet batches.

``training_config.external_memory`` chooses the path per algorithm (:func:`training_mode`).
XGBoost's refit streams the window through :class:`xgboost.ExtMemQuantileDMatrix` (supported on
CPU in xgboost 3.x): its quantised pages are cached on local disk, so memory holds one batch and
the histogram state, not the rows. The other estimators cannot stream; past the limit they train on
a patient subsample that fits. Reading goes through the snapshot (:meth:`TrainingSnapshot.batches`),
which hash-checks the file before the first batch.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import xgboost

from readmit_kedro.io.model_store import Batches
from readmit_kedro.schema import TARGET

STREAMING = frozenset({"xgboost"})  # estimators with an external-memory refit


def past_memory_limit(rows: int, config: dict[str, Any]) -> bool:
    """Whether a train window of ``rows`` is too large to hold whole (``external_memory``):
    preprocessing then goes partition by partition and training as :func:`training_mode` says."""
    return config["enabled"] is not False and rows > config["max_in_memory_rows"]


def training_mode(estimator: str, rows: int, config: dict[str, Any]) -> tuple[str, str]:
    """``("in_memory" | "external" | "subsample", why)`` for an estimator and train-window size.

    ``enabled: false`` keeps every estimator in memory (today's behaviour); ``true`` streams
    XGBoost's refit whatever the size; ``auto`` streams it past ``max_in_memory_rows``. Past that
    limit an estimator that cannot stream trains on a patient subsample of about that many rows
    rather than run the task out of memory (logged: its model sees less data than XGBoost's).
    """
    enabled, limit = config["enabled"], config["max_in_memory_rows"]
    if enabled is False:
        return "in_memory", "external_memory.enabled is false"
    size, past = f"{rows} train rows, max_in_memory_rows {limit}", past_memory_limit(rows, config)
    if estimator in STREAMING and (enabled is True or past):
        return "external", f"external_memory.enabled is {enabled} ({size})"
    if past:
        return "subsample", f"{estimator} cannot stream ({size})"
    return "in_memory", size


def read_columns(read: Batches, columns: list[str]) -> pd.DataFrame:
    """A few columns of every row (patients and labels: ~16 bytes a row), batch by batch."""
    return pd.concat(read(columns), ignore_index=True)


def read_rows(read: Batches, columns: list[str], rows: np.ndarray) -> pd.DataFrame:
    """The window's ``rows`` (sorted positions), keeping only them from each batch."""
    kept, offset = [], 0
    for frame in read(columns):
        stop = offset + len(frame)
        chosen = rows[(rows >= offset) & (rows < stop)] - offset
        kept.append(frame.iloc[chosen])
        offset = stop
    return pd.concat(kept, ignore_index=True)


class _LabelledBatches(xgboost.DataIter):
    """Feeds XGBoost one batch of (features, label) at a time."""

    def __init__(self, read: Batches, features: list[str], cache_prefix: str) -> None:
        super().__init__(cache_prefix=cache_prefix)
        self._read, self._features = read, features
        self._batches: Iterator[pd.DataFrame] | None = None

    def next(self, input_data: Any) -> bool:
        if self._batches is None:
            self._batches = self._read([*self._features, TARGET])
        frame = next(self._batches, None)
        if frame is None:
            return False
        input_data(
            data=frame[self._features].to_numpy(dtype="float32"), label=frame[TARGET].to_numpy()
        )
        return True

    def reset(self) -> None:
        self._batches = None


def fit_streamed(
    model: xgboost.XGBClassifier, read: Batches, features: list[str]
) -> xgboost.XGBClassifier:
    """Fit ``model`` (its parameters as set) on every batch without holding the rows in memory.

    Same booster parameters and rounds as ``model.fit``; the quantile sketch is merged over
    batches instead of computed on all rows at once, so split candidates can differ slightly.
    The booster is loaded back into ``model``, so predict_proba, pickling and ``pred_contribs``
    work as for an in-memory fit.
    """
    with tempfile.TemporaryDirectory(prefix="xgboost-extmem-") as cache:
        batches = _LabelledBatches(read, features, os.path.join(cache, "train"))
        matrix = xgboost.ExtMemQuantileDMatrix(batches, max_bin=model.max_bin, nthread=model.n_jobs)
        booster = xgboost.train(
            model.get_xgb_params(), matrix, num_boost_round=model.get_num_boosting_rounds()
        )
        del matrix  # release its cache pages before their folder goes
    model.load_model(bytearray(booster.save_raw("json")))
    return model
