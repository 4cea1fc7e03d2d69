"""Pointers and run-time pins are names, never paths: a tampered pointer or a pin naming another
bucket is refused before anything is read through it (issue 18, finding 1 and 6)."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from kedro.io import DatasetError
from sklearn.linear_model import LogisticRegression

from readmit_kedro.commands.registry import registry as registry_cli
from readmit_kedro.io.atomic import UnsafeNameError
from readmit_kedro.io.model_store import (
    ServingModelDataset,
    TrainingSnapshot,
    TrainingSnapshotDataset,
)
from readmit_kedro.io.published import PandasPublishedTable
from readmit_kedro.io.registry import ModelRegistry
from readmit_kedro.io.signing import SignatureError

OTHER_BUCKET = "/other-bucket/x"  # s3fs strips the slash: another bucket


@pytest.fixture
def reg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    key = str(tmp_path / "model_signing_ed25519.pem")
    monkeypatch.setenv("READMIT_SIGNING_KEY_FILE", key)
    registry = ModelRegistry(
        str(tmp_path / "registry"), signing={"backend": "ed25519", "filepath": key}
    )
    model = LogisticRegression().fit([[0.0], [1.0]], [0, 1])
    record = registry.register("xgboost", model, metrics={}, metadata={})
    registry.promote("xgboost", record["version"], "first")
    return registry


def test_a_pin_naming_another_bucket_is_refused_before_any_read(reg):
    with pytest.raises(DatasetError, match=r"inference_config\.model_algorithm '/other-bucket/x'"):
        ServingModelDataset(path=reg.root, model_algorithm=OTHER_BUCKET, model_version="v1")
    with pytest.raises(DatasetError, match=r"inference_config\.model_version '\.\./v1'"):
        ServingModelDataset(path=reg.root, model_algorithm="xgboost", model_version="../v1")


@pytest.mark.parametrize("algorithm", [OTHER_BUCKET, "../xgboost", "XGBoost/x"])
def test_the_registry_takes_algorithms_as_names_only(reg, algorithm):
    with pytest.raises(UnsafeNameError, match="is not a name this project writes"):
        reg.record(algorithm)
    with pytest.raises(UnsafeNameError):
        reg.list_versions(algorithm)


@pytest.mark.parametrize(
    "arguments",
    [["list", "--algorithm", OTHER_BUCKET], ["promote", OTHER_BUCKET, "v20260101T000000000000Z"]],
)
def test_the_registry_cli_says_so_in_one_line(reg, arguments):
    result = CliRunner().invoke(registry_cli, [*arguments, "--root", reg.root])
    assert result.exit_code == 1
    assert "is not a name this project writes" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_a_tampered_latest_pointer_is_refused(reg):
    Path(reg.store.path("xgboost", "latest")).write_text("../../elsewhere/v20260101T000000000000Z")
    with pytest.raises(UnsafeNameError, match=r"the pointer .*xgboost/latest holds"):
        reg.record("xgboost")


def test_a_tampered_champion_record_is_refused_before_unpickling(reg):
    champion = Path(reg.store.path("metadata", "latest.json"))
    champion.write_text(champion.read_text().replace('"xgboost"', f'"{OTHER_BUCKET}"'))
    with pytest.raises(SignatureError, match="signature does not verify"):  # (then the name check)
        reg.load_champion()


def test_a_tampered_snapshot_pointer_is_refused(tmp_path):
    dataset = TrainingSnapshotDataset(
        path=str(tmp_path / "pre"),
        signing={"backend": "ed25519", "filepath": str(tmp_path / "key.pem")},
    )
    frame = pd.DataFrame({"a": [1.0]})
    dataset.save(TrainingSnapshot(frame, frame, frame, None, {"processed_features": ["a"]}))
    (tmp_path / "pre" / "latest.txt").write_text("/etc")
    with pytest.raises(DatasetError, match=r"latest\.txt holds '/etc'"):
        dataset.load()


def test_a_tampered_table_pointer_is_refused(tmp_path):
    table = PandasPublishedTable(filepath=str(tmp_path / "gold"))
    table.save(pd.DataFrame({"a": [1]}))
    (tmp_path / "gold" / "_LATEST").write_text("../../silver/v20260101T000000000000Z")
    with pytest.raises(DatasetError, match="_LATEST holds"):
        table.load()


# --------------------------------------------------------------- the trigger's pins through Kedro
PIN = "v20260101T000000000000Z"


@pytest.fixture
def project_catalog(kedro_project: Path):
    """The catalog of a project copy, created with given run-time params (``kedro run --params``)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(kedro_project)

    def catalog(**runtime_params):
        with KedroSession.create(project_path=kedro_project, runtime_params=runtime_params) as s:
            return s.load_context().catalog

    return catalog


@pytest.mark.parametrize(
    ("algorithm", "message"),
    [
        (OTHER_BUCKET, "is not a name this project writes"),
        ("../registry", "is not a name this project writes"),
        ("gradient_boosting", "is not a configured algorithm"),  # a name, but not one we train
    ],
)
def test_a_trigger_pin_is_refused_before_the_registry_is_read(project_catalog, algorithm, message):
    catalog = project_catalog(inference_config={"model_algorithm": algorithm, "model_version": PIN})
    with pytest.raises(DatasetError, match=message):
        catalog.load("inference_serving_model")


def test_run_time_params_cannot_move_a_storage_root(project_catalog, kedro_project):
    """Roots are globals, which ``--params`` does not reach: only parameters are overridden."""
    catalog = project_catalog(registry_root=OTHER_BUCKET, data_root=OTHER_BUCKET)
    for name in ("current_champion", "preprocessed_training_data", "xgboost.estimator"):
        where = str(next(iter(catalog.get(name)._describe().values())))
        assert where.startswith(str(kedro_project / "data")), (name, where)


def test_catalog_takes_no_path_from_run_time_params():
    """The only run-time params the catalog reads are the two serving pins, both checked above."""
    conf = Path(__file__).resolve().parents[1] / "conf"
    used = {
        match
        for path in conf.rglob("catalog*.yml")
        for match in re.findall(r"\$\{runtime_params:([^,}]+)", path.read_text())
    }
    assert used == {"inference_config.model_algorithm", "inference_config.model_version"}


def test_the_configured_algorithms_are_the_trained_ones():
    from kedro.config import OmegaConfigLoader

    from readmit_kedro.pipelines.training.modeling import ESTIMATORS

    conf = Path(__file__).resolve().parents[1] / "conf"
    loader = OmegaConfigLoader(str(conf), base_env="base", default_run_env="base")
    assert loader["globals"]["model_algorithms"] == list(ESTIMATORS)
    assert set(loader["parameters"]["training_config"]["algorithms"]) <= set(ESTIMATORS)
