"""Prediction tables: the dated files of each inference run and the prediction store.

Prediction files are read while inference rewrites them (monitoring, analysts), so every save
replaces the whole file in one step (temp file + rename locally, one PUT on S3): a reader sees the
previous table or the new one, never a part. Both work on local paths and ``s3://`` alike
(``credentials``/``fs_args`` go to fsspec).

The store is keyed by ``run_date``: a run owns the rows of its date. It is saved as a
:class:`StoreUpdate` (this run's rows), which the dataset applies to the store as it is at write
time, by compare-and-swap: two runs publishing at once (a manual run during a scheduled one, two
backfilled dates) both land, in the same file whatever their order, and a run whose encounters
another date has predicted in the meantime is refused with nothing written.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from kedro.io import DatasetError

from readmit_kedro.io.atomic import ConcurrentUpdateError
from readmit_kedro.io.base import ParquetFileDataset, parquet_bytes
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


@dataclass(frozen=True)
class StoreUpdate:
    """One inference run's rows for the prediction store: they replace its rows of ``run_date``
    (ISO date), so a re-run of a date replaces its rows and never appends them twice."""

    run_date: str
    rows: pd.DataFrame

    def apply(self, store: pd.DataFrame) -> pd.DataFrame:
        """``store`` with these rows in place of its rows of ``run_date``, sorted by
        ``(run_date, encounter_id)``: the same table whatever order runs came in.

        Raises :class:`ConcurrentUpdateError` if another date already holds one of these
        encounters (another run predicted it while this one ran): an encounter is predicted once.
        """
        others = store[store["run_date"] != self.run_date]
        clash = int(others["encounter_id"].isin(self.rows["encounter_id"]).sum())
        if clash:
            raise ConcurrentUpdateError(
                f"{clash} encounters of this run were predicted by another run while it ran (the "
                "prediction store changed under it); the store was not updated: re-run this date"
            )
        return (
            as_prediction_table(pd.concat([others, self.rows], ignore_index=True))
            .sort_values(["run_date", "encounter_id"], kind="stable")
            .reset_index(drop=True)
        )


class PredictionsDataset(ParquetFileDataset):
    """One Parquet file of prediction rows (``schema.PREDICTION_COLUMNS``), replaced atomically.

    A file that does not exist yet loads as a table with no rows: before the first inference run
    nothing has been predicted, which is a state, not an error.
    """

    def empty(self) -> pd.DataFrame:
        return as_prediction_table(pd.DataFrame(columns=list(PREDICTION_COLUMNS)))

    def save(self, data: pd.DataFrame) -> None:
        self._check_columns(data)
        super().save(data)

    def _check_columns(self, data: pd.DataFrame) -> None:
        if tuple(data.columns) != PREDICTION_COLUMNS:
            raise DatasetError(
                f"{self._store.root}: prediction tables have the columns {list(PREDICTION_COLUMNS)}, "
                f"got {list(data.columns)}"
            )


class PredictionStoreDataset(PredictionsDataset):
    """The prediction store: loads as a table, saves a :class:`StoreUpdate`.

    The update is applied to the store as read at write time and written only if the store is
    still that version (:meth:`AtomicStore.update_bytes`); if another run published in between,
    it is applied again to that run's result. A full table is refused: replacing the store with
    a table computed from an earlier read would drop the rows another run published since.
    """

    def save(self, data: StoreUpdate) -> None:
        if not isinstance(data, StoreUpdate):
            raise DatasetError(
                f"{self._store.root}: the prediction store saves a StoreUpdate (one run's rows), "
                f"not a {type(data).__name__}"
            )
        self._check_columns(data.rows)
        self._store.update_bytes(
            self._path, lambda held: parquet_bytes(data.apply(self._frame(held)))
        )
