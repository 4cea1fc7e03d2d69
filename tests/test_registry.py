"""Model registry: layout, atomic publication, integrity checks, champion moves, CLI, S3."""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression

from readmit_kedro.commands.registry import registry as registry_cli
from readmit_kedro.io import registry as registry_module
from readmit_kedro.io.atomic import AtomicStore
from readmit_kedro.io.registry import ModelIntegrityError, ModelRegistry, RegistryError
from tests.support.race import assert_concurrent_registrations_kept

METRICS = {
    "test": {"roc_auc": 0.7, "calibration": [{"decile": 1, "rows": 5}]},
    "oot": {"roc_auc": 0.68},
}


def _model(seed: int = 0) -> LogisticRegression:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(200, 3))
    return LogisticRegression().fit(X, (X[:, 0] + rng.normal(size=200) > 0).astype(int))


def _register(reg: ModelRegistry, algorithm: str = "logistic_regression", seed: int = 0) -> dict:
    return reg.register(
        algorithm, _model(seed), metrics=METRICS, metadata={"run_date": "2008-12-31", "seed": seed}
    )


@pytest.fixture
def reg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    """A registry signed with a key of its own (the CLI finds it through its env var)."""
    key = str(tmp_path / "conf" / "local" / "model_signing_ed25519.pem")
    monkeypatch.setenv("READMIT_SIGNING_KEY_FILE", key)
    return ModelRegistry(
        str(tmp_path / "registry"), signing={"backend": "ed25519", "filepath": key}
    )


def test_register_writes_the_layout_and_loads_back_the_same_model(reg, tmp_path):
    model = _model()
    record = reg.register(
        "xgboost", model, metrics=METRICS, metadata={"run_date": "2008-12-31", "params": {"a": 1}}
    )
    folder = tmp_path / "registry" / "xgboost" / record["version"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "metadata.json",
        "metrics.json",
        "model.pkl",
    ]
    assert (tmp_path / "registry" / "xgboost" / "latest").read_text() == record["version"]
    assert reg.list_versions("xgboost") == [record]
    assert record["metrics"] == {"test": {"roc_auc": 0.7}, "oot": {"roc_auc": 0.68}}
    assert record["run_date"] == "2008-12-31"
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["sha256"] == record["sha256"]
    assert metadata["params"] == {"a": 1}
    assert metadata["environment"]["packages"]["scikit-learn"]
    assert json.loads((folder / "metrics.json").read_text()) == METRICS  # full, with calibration

    X = np.random.default_rng(1).normal(size=(10, 3))
    np.testing.assert_array_equal(reg.load("xgboost").predict_proba(X), model.predict_proba(X))
    assert reg.algorithms() == ["xgboost"]


def test_new_versions_are_appended_and_latest_follows(reg):
    first, second = _register(reg, seed=0), _register(reg, seed=1)
    assert [r["version"] for r in reg.list_versions("logistic_regression")] == [
        first["version"],
        second["version"],
    ]
    assert first["version"] < second["version"]
    assert reg.record("logistic_regression")["version"] == second["version"]
    assert reg.record("logistic_regression", first["version"]) == first
    with pytest.raises(RegistryError, match="v0 is not in"):
        reg.load("logistic_regression", "v0")


def test_failure_before_the_pointers_leaves_the_old_state_readable(reg, monkeypatch):
    old = _register(reg)
    reg.promote("logistic_regression", old["version"], "first")

    def crash(*args, **kwargs):
        raise OSError("disk full while publishing")

    monkeypatch.setattr(AtomicStore, "update_text", crash)
    with pytest.raises(OSError, match="disk full"):
        _register(reg, seed=1)
    # The new bundle was written (bundle first) but nothing points at it.
    folders = [p for p in (Path(reg.root) / "logistic_regression").iterdir() if p.is_dir()]
    assert len(folders) == 2
    assert [r["version"] for r in reg.list_versions("logistic_regression")] == [old["version"]]
    assert reg.record("logistic_regression")["version"] == old["version"]
    loaded = reg.load_champion()
    assert loaded.record["version"] == old["version"]
    assert loaded.model.predict_proba(np.zeros((1, 3))).shape == (1, 2)


def test_failed_promotion_keeps_the_old_champion(reg, monkeypatch):
    old, new = _register(reg, seed=0), _register(reg, seed=1)
    reg.promote("logistic_regression", old["version"], "first")
    monkeypatch.setattr(
        ModelRegistry, "_publish", lambda *a, **k: (_ for _ in ()).throw(OSError("network"))
    )
    with pytest.raises(OSError, match="network"):
        reg.promote("logistic_regression", new["version"], "better")
    assert reg.champion()["version"] == old["version"]
    assert reg.load_champion().record["version"] == old["version"]


def test_an_interrupted_file_write_keeps_the_previous_content(reg, monkeypatch, tmp_path):
    target = reg.store.path("pointer")
    reg.store.write_bytes(target, b"v1")
    monkeypatch.setattr(os, "replace", lambda *a: (_ for _ in ()).throw(OSError("killed")))
    with pytest.raises(OSError, match="killed"):
        reg.store.write_bytes(target, b"v2-much-longer")
    assert Path(target).read_bytes() == b"v1"
    assert [p.name for p in Path(target).parent.iterdir()] == ["pointer"]  # no temp file left


class _Payload:
    """Unpickling this creates a directory: stands in for arbitrary code in a bundle."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def test_a_tampered_bundle_is_refused_before_it_is_unpickled(reg, tmp_path):
    record = _register(reg)
    canary = tmp_path / "canary"
    pickle.loads(pickle.dumps(_Payload(canary)))
    assert canary.is_dir()  # the payload really runs code when unpickled

    marker = tmp_path / "pwned"
    bundle = Path(reg.root) / "logistic_regression" / record["version"] / "model.pkl"
    bundle.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ModelIntegrityError, match=r"refusing to unpickle .*model\.pkl") as error:
        reg.load("logistic_regression")
    assert str(bundle) in str(error.value)
    assert not marker.exists()
    with pytest.raises(ModelIntegrityError):
        reg.promote("logistic_regression", record["version"], "should not happen")


def test_a_truncated_bundle_is_refused(reg):
    record = _register(reg)
    reg.promote("logistic_regression", record["version"], "first")
    bundle = Path(reg.root) / "logistic_regression" / record["version"] / "model.pkl"
    bundle.write_bytes(bundle.read_bytes()[:-100])
    with pytest.raises(ModelIntegrityError, match="modified or truncated"):
        reg.load_champion()


def test_a_champion_record_must_match_the_index(reg):
    record = _register(reg)
    reg.promote("logistic_regression", record["version"], "first")
    latest = Path(reg.root) / "metadata" / "latest.json"
    champion = json.loads(latest.read_text())
    latest.write_text(json.dumps({**champion, "sha256": "0" * 64}))
    with pytest.raises(ModelIntegrityError, match=r"champion .* signature does not verify"):
        reg.load_champion()


WINDOWS = {
    "train": {"start_year": 1999, "end_year": 2005},
    "test": {"start_year": 2006, "end_year": 2007},
}


def test_the_champion_says_which_years_it_was_trained_on(reg, monkeypatch):
    """Training refuses to re-score a champion on rows it learned from, so the years travel with it:
    in the signed index record, or (versions registered before it held them) in metadata.json."""
    metadata = {"run_date": "2008-12-31", "windows": WINDOWS}
    record = reg.register("xgboost", _model(), metrics=METRICS, metadata=metadata)
    assert record["windows"] == WINDOWS  # under the signature
    reg.promote("xgboost", record["version"], "first")
    champion = reg.load_champion().record
    assert (champion["run_date"], champion["windows"]) == ("2008-12-31", WINDOWS)

    monkeypatch.setattr(registry_module, "PROVENANCE", ("run_date",))
    older = reg.register("xgboost", _model(1), metrics=METRICS, metadata=metadata)
    assert "windows" not in older
    reg.promote("xgboost", older["version"], "an older registration")
    assert reg.load_champion().record["windows"] == WINDOWS


def test_promote_and_rollback_walk_back_through_history(reg):
    assert reg.champion() is None and reg.load_champion() is None
    v1, v2 = _register(reg, seed=0), _register(reg, "xgboost", seed=1)
    v3 = _register(reg, seed=2)
    reg.promote("logistic_regression", v1["version"], "first")
    reg.promote("xgboost", v2["version"], "better on test")
    reg.promote("logistic_regression", v3["version"], "newer data")

    back = reg.rollback("v3 misbehaves")
    assert (back["algorithm"], back["version"]) == ("xgboost", v2["version"])
    assert back["reason"].startswith(f"rollback from logistic_regression {v3['version']}")
    assert reg.load_champion().record["version"] == v2["version"]
    assert reg.rollback()["version"] == v1["version"]
    with pytest.raises(RegistryError, match="no earlier champion"):
        reg.rollback()
    history = reg.history()
    assert [h["version"] for h in history] == [
        v1["version"], v2["version"], v3["version"], v2["version"], v1["version"]
    ]  # fmt: skip
    assert all(h["sha256"] and h["promoted_at"] for h in history)
    with pytest.raises(RegistryError, match="is not in"):
        reg.promote("xgboost", "v19990101T000000000000Z", "typo")


def test_cli_lists_promotes_and_rolls_back(reg):
    v1, v2 = _register(reg, seed=0), _register(reg, "random_forest", seed=1)
    runner = CliRunner()
    root = ["--root", reg.root]

    promoted = runner.invoke(registry_cli, ["promote", *root, "logistic_regression", v1["version"]])
    assert promoted.exit_code == 0, promoted.output
    assert json.loads(promoted.output)["version"] == v1["version"]
    runner.invoke(registry_cli, ["promote", *root, "random_forest", v2["version"]])

    listing = runner.invoke(registry_cli, ["list", *root])
    assert listing.exit_code == 0, listing.output
    starred = [line for line in listing.output.splitlines() if line.startswith("*")]
    assert len(starred) == 2 and v2["version"] in starred[0]  # the row, and the footer
    only = runner.invoke(registry_cli, ["list", *root, "--algorithm", "logistic_regression"])
    assert "random_forest" not in only.output.split("\n\n")[0]

    rolled = runner.invoke(registry_cli, ["rollback", *root])
    assert rolled.exit_code == 0 and json.loads(rolled.output)["version"] == v1["version"]
    failed = runner.invoke(registry_cli, ["rollback", *root])
    assert failed.exit_code == 1 and "no earlier champion" in failed.output
    unknown = runner.invoke(registry_cli, ["promote", *root, "xgboost", "v1"])
    assert unknown.exit_code == 1 and "xgboost v1 is not in" in unknown.output


def _interval(estimate: float, low: float, high: float) -> dict:
    return {"estimate": estimate, "low": low, "high": high, "se": (high - low) / 3.92}


def test_cli_list_shows_auc_intervals_and_bare_values_for_older_records(reg):
    with_intervals = {
        window: {
            "roc_auc": auc,
            "pr_auc": 0.2,
            "intervals": {
                "method": "patient-clustered bootstrap, percentile interval",
                "level": 0.95,
                "resamples_used": 200,
                "roc_auc": _interval(auc, auc - 0.012, auc + 0.011),
                "pr_auc": _interval(0.2, 0.19, 0.21),
            },
        }
        for window, auc in (("test", 0.6684), ("oot", 0.6512))
    }
    old = _register(reg, seed=0)  # METRICS: no intervals, as registered before issue 16
    new = reg.register(
        "xgboost", _model(1), metrics=with_intervals, metadata={"run_date": "2008-12-31"}
    )
    assert new["metrics"]["test"]["intervals"]["roc_auc"]["low"] == pytest.approx(0.6564)

    listing = CliRunner().invoke(registry_cli, ["list", "--root", reg.root])
    assert listing.exit_code == 0, listing.output
    header, *rows = listing.output.splitlines()
    assert "test_auc [95% CI]" in header and "oot_auc [95% CI]" in header
    by_version = {row.split()[1]: row for row in rows}
    assert "0.668 [0.656, 0.679]" in by_version[new["version"]]
    assert "0.651 [0.639, 0.662]" in by_version[new["version"]]
    assert "[" not in by_version[old["version"]]
    assert by_version[old["version"]].split()[2:4] == ["0.700", "0.680"]
    # aligned: each AUC column ends where its header does, run_date starts where its header does
    old_row, new_row = by_version[old["version"]], by_version[new["version"]]
    test_end = header.index("test_auc [95% CI]") + len("test_auc [95% CI]")
    oot_end = header.index("oot_auc [95% CI]") + len("oot_auc [95% CI]")
    assert old_row.index("0.700") + len("0.700") == new_row.index("0.679]") + 6 == test_end
    assert old_row.index("0.680") + len("0.680") == new_row.index("0.662]") + 6 == oot_end
    assert old_row.index("2008-12-31") == new_row.index("2008-12-31") == header.index("run_date")


@pytest.mark.slow
def test_the_registry_works_the_same_on_s3():
    boto3 = pytest.importorskip("boto3")
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        keys = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **keys)
        s3.create_bucket(Bucket="models")
        options = {"key": "test", "secret": "test", "client_kwargs": {"endpoint_url": endpoint}}
        reg = ModelRegistry("s3://models/registry", storage_options=options)

        record = _register(reg)
        reg.promote("logistic_regression", record["version"], "first")
        assert reg.load_champion().record["sha256"] == record["sha256"]
        listed = {o["Key"] for o in s3.list_objects_v2(Bucket="models")["Contents"]}
        prefix = f"registry/logistic_regression/{record['version']}/"
        assert {f"{prefix}model.pkl", "registry/metadata/latest.json"} <= listed
        assert "registry/logistic_regression/versions.json" in listed
        assert reg.algorithms() == ["logistic_regression"] and len(reg.history()) == 1

        body = s3.get_object(Bucket="models", Key=f"{prefix}model.pkl")["Body"].read()
        s3.put_object(Bucket="models", Key=f"{prefix}model.pkl", Body=body[:-1])
        reg.store.fs.invalidate_cache()
        with pytest.raises(ModelIntegrityError, match=r"s3://models/registry/.*model\.pkl"):
            reg.load("logistic_regression")
    finally:
        server.stop()


def test_two_runs_registering_at_once_both_land_and_latest_is_the_newest(reg):
    """A manual training run during a scheduled one: no registration is lost from the index."""
    assert_concurrent_registrations_kept(reg)
