"""Preprocessing past the train task's memory: gold read a partition at a time, the train window
processed and written batch by batch, and the same result as in memory when nothing is sampled."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from readmit_kedro.io.model_store import TrainingSnapshotDataset
from readmit_kedro.io.published import PandasPublishedPartitions, PandasPublishedTable
from readmit_kedro.pipelines.training import preprocessing
from readmit_kedro.pipelines.training.checks import check_training_data
from readmit_kedro.pipelines.training.config import validate_training_config
from readmit_kedro.pipelines.training.modeling import ESTIMATORS
from readmit_kedro.pipelines.training.preprocessing import (
    preprocess_in_batches,
    preprocess_training_data,
)
from tests.support.gold import month_partitions, publish_by_month

KEYS = ["encounter_id"]
WINDOWS = ("train", "test", "oot")


@pytest.fixture
def inputs(small_gold, dev_params) -> dict:
    """The node's arguments on the small gold-like stores, gold as month partitions."""
    features, labels = small_gold
    mc, tc = dev_params["model_config"], dev_params["training_config"]
    plan = validate_training_config(
        dev_params["run_date"], dev_params["temporal_splits"], mc, tc,
        **{name: dev_params[name] for name in ESTIMATORS},
    )  # fmt: skip
    gold = {"gold_features": month_partitions(features), "gold_labels": month_partitions(labels)}
    check = check_training_data(*gold.values(), {}, {}, plan, tc, {}, None)
    return {
        **gold,
        "training_plan": plan,
        "training_data_check": check,
        "training_config": tc,
        "model_config": mc,
    }


def test_the_partitions_concatenate_to_the_whole_table(tmp_path: Path, small_gold):
    """In the whole load's row order, with or without a manifest: the in-memory path is unchanged."""
    features = small_gold[0]
    hive = tmp_path / "hive"
    PandasPublishedTable(filepath=str(hive), partition_by=["admission_year"]).save(features)
    # A manifest whose partitions live in two versions: the newer holds the earlier months.
    manifested = tmp_path / "manifested"
    publish_by_month(
        features,
        manifested,
        lambda month: "v20260102T000000000000Z" if month < "2003" else "v20260101T000000000000Z",
    )
    months = features["admission_date"].dt.strftime("%Y-%m")
    for root in (hive, manifested):
        whole = PandasPublishedTable(filepath=str(root)).load()
        lazy = PandasPublishedPartitions(filepath=str(root)).load()
        assert len(lazy) == (10 if root == hive else months.nunique())
        parts = [load() for load in lazy.values()]
        pd.testing.assert_frame_equal(pd.concat(parts, ignore_index=True), whole)
    assert next(iter(lazy)) == "2003-01"  # the older version's partitions are read first


def _saved(snapshot, folder: Path) -> tuple[dict[str, pd.DataFrame], dict]:
    dataset = TrainingSnapshotDataset(path=str(folder), row_group_rows=300)
    dataset.save(snapshot)
    loaded = dataset.load()
    return {w: loaded.frame(w) for w in WINDOWS}, loaded.metadata


def test_batches_with_every_train_row_fitted_equal_the_in_memory_path(inputs, tmp_path: Path):
    expected = preprocess_training_data(**inputs)  # ~2,000 train rows: in memory
    assert "preprocessor_fit_rows" not in expected.metadata
    train_rows = inputs["training_data_check"]["rows"]["train"]
    batched = preprocess_in_batches(**inputs, fit_rows=train_rows)
    assert batched.metadata["preprocessor_fit_rows"] == train_rows
    assert all(batched.streamed(w) for w in WINDOWS) and batched.rows("train") == train_rows

    frames, metadata = _saved(batched, tmp_path / "batched")
    reference, reference_metadata = _saved(expected, tmp_path / "in_memory")
    for window in WINDOWS:
        pd.testing.assert_frame_equal(
            frames[window].sort_values(KEYS, ignore_index=True),
            reference[window].sort_values(KEYS, ignore_index=True),
        )
    for key in ("window_stats", "shared_patients", "processed_features", "rows"):
        assert metadata[key] == reference_metadata[key]
    stored = next((tmp_path / "batched").glob("train_data_*/train_processed.parquet"))
    groups = pq.ParquetFile(stored)
    assert groups.num_row_groups > 1
    assert all(groups.metadata.row_group(g).num_rows <= 300 for g in range(groups.num_row_groups))


def test_past_the_limit_the_preprocessor_is_fitted_on_whole_patients(inputs, monkeypatch):
    fitted = []
    fit = preprocessing.fit_preprocessor
    monkeypatch.setattr(
        preprocessing,
        "fit_preprocessor",
        lambda train, *a, **k: fitted.append(train) or fit(train, *a, **k),
    )
    limits = {"enabled": "auto", "max_in_memory_rows": 600, "batch_rows": 500}
    config = {**inputs["training_config"], "external_memory": limits}
    snapshot = preprocess_training_data(**{**inputs, "training_config": config})
    assert snapshot.streamed("train") is not None  # not processed yet

    train = snapshot.frame("train")
    (sample,) = fitted
    assert len(train) == snapshot.rows("train") == inputs["training_data_check"]["rows"]["train"]
    assert len(train) > 1000
    assert 400 < len(sample) == snapshot.metadata["preprocessor_fit_rows"] < 800
    rows_per_patient = train["patient_nbr"].value_counts()
    sampled = sample["patient_nbr"].value_counts()
    pd.testing.assert_series_equal(sampled, rows_per_patient[sampled.index], check_names=False)
    assert set(sample["encounter_id"]) <= set(train["encounter_id"])
