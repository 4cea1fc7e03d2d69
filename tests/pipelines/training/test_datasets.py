"""Kedro datasets over the registry and the preprocessed snapshots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.io import DatasetError
from sklearn.preprocessing import StandardScaler

from readmit_kedro.io.model_store import (
    ChampionDataset,
    ChampionProvenanceDataset,
    LatestVersionsDataset,
    RegisteredModelDataset,
    TrainingSnapshot,
    TrainingSnapshotDataset,
)
from readmit_kedro.io.registry import ModelRegistry


def _snapshot(seed: int) -> TrainingSnapshot:
    rng = np.random.default_rng(seed)
    frames = {
        w: pd.DataFrame({"patient_nbr": rng.integers(0, 9, 6), "f": rng.normal(size=6),
                         "readmitted_30d": [0, 1] * 3})
        for w in ("train", "test", "oot")
    }  # fmt: skip
    scaler = StandardScaler().fit(frames["train"][["f"]])
    return TrainingSnapshot(**frames, preprocessor=scaler, metadata={"processed_features": ["f"]})


def test_snapshots_are_published_behind_a_pointer_and_verified(tmp_path):
    dataset = TrainingSnapshotDataset(path=str(tmp_path / "pre"))
    assert not dataset.exists()
    first = _snapshot(0)
    dataset.save(first)
    dataset.save(_snapshot(1))
    loaded = dataset.load()
    folders = sorted(p.name for p in (tmp_path / "pre").iterdir() if p.is_dir())
    assert len(folders) == 2 and loaded.metadata["version"] == folders[-1]
    assert (tmp_path / "pre" / "latest.txt").read_text() == folders[-1]
    X, y, patients = loaded.arrays("test")
    assert X.shape == (6, 1) and y.tolist() == [0, 1] * 3 and len(patients) == 6
    assert set(loaded.metadata["files"]) == {
        "train_processed.parquet", "test_processed.parquet", "oot_processed.parquet",
        "preprocessor.pkl",
    }  # fmt: skip

    (tmp_path / "pre" / folders[-1] / "preprocessor.pkl").write_bytes(b"\x80\x05N.")
    with pytest.raises(DatasetError, match=r"refusing to unpickle .*preprocessor\.pkl"):
        dataset.load()


def test_registered_model_and_champion_datasets(tmp_path):
    root = str(tmp_path / "registry")
    registered = RegisteredModelDataset(path=root, algorithm="xgboost")
    champion = ChampionDataset(path=root)
    provenance = ChampionProvenanceDataset(path=root, unverified_champion="replace")
    assert not registered.exists() and champion.load() is None and not champion.exists()
    assert provenance.load() is None

    scaler = StandardScaler().fit([[0.0], [1.0]])
    windows = {"train": {"start_year": 1999, "end_year": 2005}}
    metadata = {"run_date": "2008-12-31", "windows": windows}
    registered.save({"model": scaler, "metrics": {"test": {"roc_auc": 0.7}}, "metadata": metadata})
    record = registered.load()
    assert record["algorithm"] == "xgboost" and record["metrics"]["test"]["roc_auc"] == 0.7

    first = {"algorithm": "xgboost", "version": record["version"], "reason": "first"}
    champion.save({**first, "replaces": None})
    loaded = champion.load()
    assert loaded.record["version"] == record["version"]
    assert np.allclose(loaded.model.mean_, scaler.mean_)
    # What check_training_data reads: the same entry and its training years, no bundle.
    assert provenance.load() == loaded.record and loaded.record["windows"] == windows
    with pytest.raises(DatasetError, match="read-only"):
        provenance.save({})
    # Keeping the champion is a no-op: no new history entry.
    champion.save({**first, "reason": "kept", "replaces": loaded.record["history_id"]})
    assert len(ModelRegistry(root).history()) == 1
    assert Path(root, "metadata", "latest.json").exists()


def test_latest_versions_are_the_records_of_each_algorithms_latest_version(tmp_path):
    root = str(tmp_path / "registry")
    latest = LatestVersionsDataset(path=root)
    assert latest.load() == {}  # before the first training run
    scaler = StandardScaler().fit([[0.0], [1.0]])
    for algorithm, runs in (("xgboost", 2), ("random_forest", 1)):
        for run in range(runs):
            RegisteredModelDataset(path=root, algorithm=algorithm).save(
                {"model": scaler, "metrics": {}, "metadata": {"training_inputs_sha256": f"d{run}"}}
            )
    records = latest.load()
    assert sorted(records) == ["random_forest", "xgboost"]
    assert (
        records["xgboost"]["version"] == ModelRegistry(root).list_versions("xgboost")[-1]["version"]
    )
    assert records["xgboost"]["training_inputs_sha256"] == "d1"
    with pytest.raises(DatasetError, match="written by registering a model"):
        latest.save({})
