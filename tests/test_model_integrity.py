"""Nothing is unpickled unless a signed record vouches for its sha256 (issue 18, finding 2).

Each test plays an attacker who can write the data plane (registry folder, datamart ``work/``,
snapshot prefix) but not the signing key: they swap a pickle *and* rewrite the digest next to it.
The pickle they plant would create a marker file when unpickled; every test checks it never ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

import pandas as pd
import pytest
from kedro.io import DatasetError
from sklearn.linear_model import LogisticRegression

from readmit_kedro.io.model_store import (
    ChampionDataset,
    LatestVersionsDataset,
    ServingModelDataset,
    SignedPickleDataset,
    TrainingSnapshot,
    TrainingSnapshotDataset,
)
from readmit_kedro.io.registry import ModelRegistry
from readmit_kedro.io.signing import Ed25519KeyFile, SignatureError

TIMESTAMP = "20260101T000000000000Z"


class _Planted:
    """Unpickling this writes a marker file: proof that the attacker's code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def _evil(tmp_path: Path) -> bytes:
    return pickle.dumps(_Planted(tmp_path / "PWNED"))


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def key(tmp_path: Path) -> Ed25519KeyFile:
    return Ed25519KeyFile(tmp_path / "keys" / "model_signing_ed25519.pem")


@pytest.fixture
def reg(tmp_path: Path, key: Ed25519KeyFile) -> ModelRegistry:
    registry = ModelRegistry(str(tmp_path / "registry"), signing=key)
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    first = registry.register("xgboost", model, metrics={"test": {"roc_auc": 0.6}}, metadata={})
    registry.promote("xgboost", first["version"], "first")
    registry.register("xgboost", model, metrics={"test": {"roc_auc": 0.7}}, metadata={})
    return registry


def _index(reg: ModelRegistry) -> Path:
    return Path(reg.store.path("xgboost", "versions.json"))


def test_signed_records_load(reg, tmp_path):
    assert reg.load_champion().record["signature"]["algorithm"] == "ed25519"
    assert reg.load("xgboost").predict([[1.0]]).tolist() == [1]
    assert not (tmp_path / "PWNED").exists()


def test_a_bundle_swapped_together_with_its_index_sha256_is_refused(reg, tmp_path):
    record = reg.record("xgboost")
    evil = _evil(tmp_path)
    Path(reg.store.path("xgboost", record["version"], "model.pkl")).write_bytes(evil)
    index = json.loads(_index(reg).read_text())
    index[-1] = {**index[-1], "sha256": _sha(evil), "size_bytes": len(evil)}
    _index(reg).write_text(json.dumps(index))
    with pytest.raises(SignatureError, match=r"index entry of xgboost v\d+T\d+Z .*does not verify"):
        reg.load("xgboost")
    assert not (tmp_path / "PWNED").exists()


def test_a_tampered_index_entry_is_refused(reg):
    index = json.loads(_index(reg).read_text())
    index[-1]["metrics"]["test"]["roc_auc"] = 0.99  # sways promotion and the repeat-run check
    _index(reg).write_text(json.dumps(index))
    with pytest.raises(SignatureError, match="does not verify"):
        reg.record("xgboost")


def test_an_unsigned_index_entry_is_refused(reg):
    index = json.loads(_index(reg).read_text())
    del index[-1]["signature"]
    _index(reg).write_text(json.dumps(index))
    with pytest.raises(SignatureError, match="carries no signature"):
        reg.load("xgboost")


def test_an_index_signed_by_another_key_is_refused(reg, tmp_path):
    other = ModelRegistry(reg.root, signing=Ed25519KeyFile(tmp_path / "attacker.pem"))
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    other.register("xgboost", model, metrics={}, metadata={})  # a complete, self-consistent forgery
    with pytest.raises(SignatureError, match=r"model_signing_ed25519\.pem"):
        reg.load("xgboost")


def test_a_champion_pointer_moved_to_another_version_is_refused(reg):
    latest = Path(reg.store.path("metadata", "latest.json"))
    champion = json.loads(latest.read_text())
    newest = reg.record("xgboost")
    latest.write_text(
        json.dumps({**champion, "version": newest["version"], "sha256": newest["sha256"]})
    )
    with pytest.raises(DatasetError, match=r"refusing the champion .*latest\.json"):
        ServingModelDataset(path=reg.root, signing=reg.signing).load()
    with pytest.raises(SignatureError):
        reg.rollback()


def test_promoting_a_forged_index_entry_is_refused(reg):
    index = json.loads(_index(reg).read_text())
    index[-1]["sha256"] = "0" * 64
    _index(reg).write_text(json.dumps(index))
    with pytest.raises(SignatureError):
        reg.promote("xgboost", index[-1]["version"], "by hand")


def test_verifying_without_the_key_says_where_it_should_be(reg, tmp_path):
    missing = ModelRegistry(reg.root, signing=Ed25519KeyFile(tmp_path / "nowhere.pem"))
    with pytest.raises(SignatureError, match=r"model-signing key .*nowhere\.pem does not exist"):
        missing.load_champion()


# ------------------------------------------------------------------------------ training snapshots
@pytest.fixture
def snapshots(tmp_path: Path, key: Ed25519KeyFile) -> TrainingSnapshotDataset:
    dataset = TrainingSnapshotDataset(path=str(tmp_path / "pre"), signing=key)
    frame = pd.DataFrame({"a": [1.0], "readmitted_30d": [0], "patient_nbr": [1]})
    dataset.save(
        TrainingSnapshot(frame, frame, frame, {"fitted": True}, {"processed_features": ["a"]})
    )
    return dataset


def _snapshot_folder(tmp_path: Path) -> Path:
    return tmp_path / "pre" / (tmp_path / "pre" / "latest.txt").read_text()


def test_a_snapshot_loads_when_signed(snapshots):
    assert snapshots.load().preprocessor == {"fitted": True}


def test_a_snapshot_preprocessor_swapped_with_its_metadata_sha256_is_refused(snapshots, tmp_path):
    folder, evil = _snapshot_folder(tmp_path), _evil(tmp_path)
    (folder / "preprocessor.pkl").write_bytes(evil)
    meta = json.loads((folder / "metadata.json").read_text())
    meta["files"]["preprocessor.pkl"] = _sha(evil)
    (folder / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match=r"snapshot metadata .*metadata\.json.*does not verify"):
        snapshots.load()
    assert not (tmp_path / "PWNED").exists()


def test_a_snapshot_pointer_to_a_planted_folder_is_refused(snapshots, tmp_path):
    planted = tmp_path / "pre" / f"train_data_{TIMESTAMP}"
    good = _snapshot_folder(tmp_path)
    planted.mkdir()
    for name in ("train_processed.parquet", "test_processed.parquet", "oot_processed.parquet"):
        (planted / name).write_bytes((good / name).read_bytes())
    evil = _evil(tmp_path)
    (planted / "preprocessor.pkl").write_bytes(evil)
    meta = json.loads((good / "metadata.json").read_text())
    meta = {
        **meta,
        "version": planted.name,
        "files": {**meta["files"], "preprocessor.pkl": _sha(evil)},
    }
    (planted / "metadata.json").write_text(json.dumps(meta))  # the old signature, new content
    (tmp_path / "pre" / "latest.txt").write_text(planted.name)
    with pytest.raises(DatasetError, match="does not verify"):
        snapshots.load()
    assert not (tmp_path / "PWNED").exists()


def test_a_signed_snapshot_copied_under_another_name_is_refused(snapshots, tmp_path):
    good = _snapshot_folder(tmp_path)
    copy = tmp_path / "pre" / f"train_data_{TIMESTAMP}"
    copy.mkdir()
    for path in good.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    (tmp_path / "pre" / "latest.txt").write_text(copy.name)
    with pytest.raises(DatasetError, match=r"signed for 'train_data_\d+T\d+Z'"):
        snapshots.load()


# ------------------------------------------------------------------- pickles between training nodes
@pytest.fixture
def candidates(tmp_path: Path, key: Ed25519KeyFile) -> dict[str, SignedPickleDataset]:
    folder = tmp_path / "work" / "candidates" / "xgboost"
    datasets = {
        name: SignedPickleDataset(filepath=str(folder / f"{name}.pkl"), signing=key)
        for name in ("estimator", "calibrator")
    }
    datasets["estimator"].save({"kind": "estimator"})
    datasets["calibrator"].save({"kind": "calibrator"})
    return datasets


def test_candidate_pickles_round_trip(candidates):
    assert candidates["estimator"].exists()
    assert candidates["estimator"].load() == {"kind": "estimator"}


def test_a_candidate_swapped_with_its_signature_file_rewritten_is_refused(candidates, tmp_path):
    path = Path(candidates["estimator"]._path)
    evil = _evil(tmp_path)
    path.write_bytes(evil)
    sig = Path(f"{path}.sig.json")
    sig.write_text(json.dumps({**json.loads(sig.read_text()), "sha256": _sha(evil)}))
    with pytest.raises(DatasetError, match=r"estimator\.pkl\.sig\.json.*does not verify"):
        candidates["estimator"].load()
    assert not (tmp_path / "PWNED").exists()


def test_a_candidate_swapped_alone_is_refused(candidates, tmp_path):
    Path(candidates["estimator"]._path).write_bytes(_evil(tmp_path))
    with pytest.raises(DatasetError, match="refusing to unpickle"):
        candidates["estimator"].load()
    assert not (tmp_path / "PWNED").exists()


def test_a_candidate_without_a_signature_is_refused(candidates, tmp_path):
    os.remove(f"{candidates['estimator']._path}.sig.json")
    with pytest.raises(DatasetError, match="carries no signature"):
        candidates["estimator"].load()


def test_the_calibrator_copied_over_the_estimator_is_refused(candidates):
    estimator, calibrator = candidates["estimator"]._path, candidates["calibrator"]._path
    for suffix in ("", ".sig.json"):
        Path(estimator + suffix).write_bytes(Path(calibrator + suffix).read_bytes())
    with pytest.raises(DatasetError, match=r"signed for '.*calibrator\.pkl'"):
        candidates["estimator"].load()


def test_the_training_catalog_pickles_nothing_unsigned():
    """Every pickle-carrying dataset of conf/ goes through a signed dataset."""
    conf = Path(__file__).resolve().parents[1] / "conf"
    text = "\n".join(p.read_text() for p in conf.rglob("catalog*.yml"))
    assert "pickle.PickleDataset" not in text


# ------------------------------------------------------------- a registry from before signing
def _strip_signatures(reg: ModelRegistry) -> None:
    """The registry as the code before signing left it: the same files, no signatures."""
    for path in (_index(reg), Path(reg.store.path("metadata", "latest.json"))):
        content = json.loads(path.read_text())
        for record in content if isinstance(content, list) else [content]:
            del record["signature"]
        path.write_text(json.dumps(content))


def test_an_unsigned_champion_is_refused_for_scoring_but_replaced_by_training(reg, caplog):
    _strip_signatures(reg)
    with pytest.raises(DatasetError, match="carries no signature"):
        ServingModelDataset(path=reg.root, signing=reg.signing).load()
    with pytest.raises(DatasetError, match="carries no signature"):
        ChampionDataset(path=reg.root, signing=reg.signing).load()

    training = ChampionDataset(path=reg.root, signing=reg.signing, unverified_champion="replace")
    assert training.load() is None  # nothing unverified is scored ...
    assert "treated as no champion" in caplog.text
    assert LatestVersionsDataset(path=reg.root, signing=reg.signing).load() == {}  # ... or trusted
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    signed = reg.register("xgboost", model, metrics={}, metadata={})
    decision = {"algorithm": "xgboost", "version": signed["version"], "reason": "retrained"}
    training.save({**decision, "replaces": None})  # made against no (verified) champion
    served = ServingModelDataset(path=reg.root, signing=reg.signing).load()
    assert served.record["version"] == signed["version"]


def test_the_local_key_is_created_private_once_and_shared(tmp_path):
    path = tmp_path / "conf" / "local" / "model_signing_ed25519.pem"
    first, second = Ed25519KeyFile(path), Ed25519KeyFile(path)
    signed = first.sign("test", {"a": 1})
    assert path.stat().st_mode & 0o777 == 0o600
    assert second.verify("test", signed, "a record") == signed  # the key on disk, not a new one
    second.sign("test", {"b": 2})
    assert first.verify("test", signed, "a record") == signed
    with pytest.raises(SignatureError, match="does not verify"):
        first.verify("another purpose", signed, "a record")
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no temp file left


def _sign_all_at_once(signers: list[Ed25519KeyFile]) -> tuple[list[dict], list[Exception]]:
    import threading

    start, signed, errors = threading.Barrier(len(signers)), [], []

    def sign(signer: Ed25519KeyFile) -> None:
        start.wait()
        try:
            signed.append(signer.sign("test", {"a": 1}))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=sign, args=(s,)) for s in signers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return signed, errors


def test_threads_creating_the_local_key_at_once_all_sign_with_one_key(tmp_path):
    """Two trainings in one process (a thread pool) may both be the first to sign: one key wins,
    every signer uses it, and no signer trips over another's temporary file."""
    for round_ in range(20):
        path = tmp_path / str(round_) / "model_signing_ed25519.pem"
        signed, errors = _sign_all_at_once([Ed25519KeyFile(path) for _ in range(6)])
        assert not errors, errors
        verifier = Ed25519KeyFile(path)
        for record in signed:
            assert verifier.verify("test", record, "a record") == record
        assert sorted(p.name for p in path.parent.iterdir()) == [path.name]
