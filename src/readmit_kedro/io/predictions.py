"""Prediction tables: the dated files of each inference run and the prediction store.

Prediction files are read while inference rewrites them (monitoring, analysts), so every save
replaces the whole file in one step (temp file + rename locally, one PUT on S3): a reader sees the
previous table or the new one, never a part. Both work on local paths and ``s3://`` alike
(``credentials``/``fs_args`` go to fsspec).
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
from kedro.io import DatasetError

from readmit_kedro.io.base import StoreDataset
from readmit_kedro.schema import PREDICTION_COLUMNS

# Column types of every prediction table (the store and the dated files).
PREDICTION_DTYPES: dict[str, str] = {
    "encounter_id": "int64",
    "patient_nbr": "int64",
    "admission_date": "datetime64[us]",
    "probability": "float64",
    "predicted_label": "int64",
    "risk_band": "str",
    "probability_lower": "float64",  # NaN (null in Parquet) when the run wrote no interval
    "probability_upper": "float64",
    "model_algorithm": "str",
    "model_version": "str",
    "model_sha256": "str",
    "run_date": "str",  # ISO date
    "scored_at": "str",  # ISO 8601 timestamp, UTC
}  # same keys and order as schema.PREDICTION_COLUMNS (tests check it)


def as_prediction_table(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with exactly the prediction columns, in contract order and types."""
    return frame[list(PREDICTION_COLUMNS)].astype(PREDICTION_DTYPES)


class PredictionsDataset(StoreDataset):
    """One Parquet file of prediction rows (``schema.PREDICTION_COLUMNS``), replaced atomically.

    A file that does not exist yet loads as a table with no rows: before the first inference run
    nothing has been predicted, which is a state, not an error.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._path = self._store.path()

    def load(self) -> pd.DataFrame:
        if not self._store.exists(self._path):
            return as_prediction_table(pd.DataFrame(columns=list(PREDICTION_COLUMNS)))
        return pd.read_parquet(io.BytesIO(self._store.read_bytes(self._path)))

    def save(self, data: pd.DataFrame) -> None:
        if tuple(data.columns) != PREDICTION_COLUMNS:
            raise DatasetError(
                f"{self._store.root}: prediction tables have the columns {list(PREDICTION_COLUMNS)}, "
                f"got {list(data.columns)}"
            )
        buffer = io.BytesIO()
        data.to_parquet(buffer, index=False)
        self._store.write_bytes(self._path, buffer.getvalue())

    def _exists(self) -> bool:
        return self._store.exists(self._path)
