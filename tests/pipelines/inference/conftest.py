"""Real, small models in a real registry, and gold-like stores to score.

The champion is built the way training builds one (its preprocessor and a class-weighted
xgboost fitted on 1999-2005) and calibrated on 2006-2007 as a ``CalibratedModel``; a second,
different model (logistic regression, no calibrator) serves the pinned-version and bare-bundle
tests. ``run_inference`` calls the four nodes in pipeline order with the pipeline's own dataset
classes in a temporary folder; test_pipeline.py runs the same through Kedro.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kedro_datasets.partitions import PartitionedDataset
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from xgboost import XGBClassifier

from readmit_kedro.io.model_store import ServingModelDataset
from readmit_kedro.io.predictions import PredictionsDataset, PredictionStoreDataset
from readmit_kedro.io.registry import ModelRegistry
from readmit_kedro.model.calibration import CalibratedModel, calibrate
from readmit_kedro.pipelines.inference.nodes import (
    publish_predictions,
    resolve_model,
    score_encounters,
    select_new_encounters,
)
from readmit_kedro.pipelines.training.preprocessing import fit_preprocessor, join_gold
from readmit_kedro.schema import FEATURE_COLUMNS, TARGET
from tests.support.gold import make_gold_like

PREPROCESSING = {"rare_category_min_frequency": 0.005}


@pytest.fixture(scope="session")
def gold() -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(gold_features, gold_labels)``: about 6,000 encounters admitted 1999-2008."""
    return make_gold_like(6_000, seed=11)


def _windows(gold: tuple[pd.DataFrame, pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    joined = join_gold(*gold)
    year = joined["admission_date"].dt.year
    return joined[year <= 2005], joined[year.between(2006, 2007)]


@pytest.fixture(scope="session")
def champion_bundle(gold) -> CalibratedModel:
    train, calibration = _windows(gold)
    preprocessor = fit_preprocessor(train, PREPROCESSING, feature_selection=False, seed=0)
    y = train[TARGET].to_numpy()
    estimator = XGBClassifier(
        n_estimators=40, max_depth=3, learning_rate=0.1, n_jobs=1, random_state=0,
        scale_pos_weight=(len(y) - y.sum()) / y.sum(),
    )  # fmt: skip
    estimator.fit(preprocessor.transform(train[list(FEATURE_COLUMNS)]), y)
    bundle = Pipeline([("preprocess", preprocessor), ("model", estimator)])
    return calibrate(bundle, calibration, calibration[TARGET].to_numpy())


@pytest.fixture(scope="session")
def bare_bundle(gold) -> Pipeline:
    """A bundle as training registers it without a calibrator: no ``predict_with_interval``."""
    train, _ = _windows(gold)
    preprocessor = fit_preprocessor(train, PREPROCESSING, feature_selection=False, seed=0)
    model = LogisticRegression(class_weight="balanced", max_iter=1000)
    return Pipeline([("preprocess", preprocessor), ("model", model)]).fit(
        train[list(FEATURE_COLUMNS)], train[TARGET]
    )


def register(registry: ModelRegistry, algorithm: str, bundle: Any, *, promote: bool) -> str:
    """Register ``bundle`` (and make it the champion if ``promote``); its version."""
    version = registry.register(algorithm, bundle, metrics={}, metadata={})["version"]
    if promote:
        registry.promote(algorithm, version, "test")
    return version


@pytest.fixture
def registry(tmp_path: Path, champion_bundle) -> ModelRegistry:
    """A registry whose champion is ``champion_bundle`` (xgboost)."""
    registry = ModelRegistry(str(tmp_path / "registry"))
    register(registry, "xgboost", champion_bundle, promote=True)
    return registry


@pytest.fixture(scope="session")
def config() -> dict[str, Any]:
    """The shipped ``inference_config`` (conf/base/parameters_inference.yml)."""
    from kedro.config import OmegaConfigLoader

    conf = Path(__file__).resolve().parents[3] / "conf"
    loader = OmegaConfigLoader(str(conf), base_env="base", default_run_env="base")
    return loader["parameters"]["inference_config"]


@dataclass(frozen=True)
class RunResult:
    predictions: pd.DataFrame  # this run's dated file, as read back
    store: pd.DataFrame
    summary: dict[str, Any]
    signal: dict[str, Any]


@dataclass(frozen=True)
class Outputs:
    """Where the nodes' outputs live, with the classes the catalog uses for them."""

    root: Path

    @property
    def store_file(self) -> Path:
        return self.root / "prediction_store.parquet"

    @property
    def store(self) -> PredictionStoreDataset:
        return PredictionStoreDataset(path=str(self.store_file))

    @property
    def dated(self) -> PartitionedDataset:
        return PartitionedDataset(
            path=str(self.root / "predictions"),
            dataset=PredictionsDataset,
            filepath_arg="path",
            filename_suffix=".parquet",
        )

    def dated_file(self, run_date: str) -> Path:
        return self.root / "predictions" / f"predictions_{run_date}.parquet"


@pytest.fixture
def outputs(tmp_path: Path) -> Outputs:
    return Outputs(tmp_path / "model_output")


@pytest.fixture
def run_inference(
    registry: ModelRegistry, outputs: Outputs, config: dict[str, Any]
) -> Callable[..., RunResult]:
    """One inference run on ``gold_features`` at ``run_date``; keyword args override the config,
    ``pin=(algorithm, version)`` pins a registered version as the catalog does."""

    def run(
        gold_features: pd.DataFrame,
        run_date: str,
        pin: tuple[str, str] | None = None,
        **overrides: Any,
    ) -> RunResult:
        run_config = {**config, **overrides}
        algorithm, version = pin or (None, None)
        serving = ServingModelDataset(
            path=registry.root, model_algorithm=algorithm, model_version=version
        )
        model = resolve_model(serving.load(), run_config)
        new = select_new_encounters(gold_features, outputs.store.load(), model, run_date)
        dated, summary = score_encounters(new, serving.load(), model, run_config, run_date)
        outputs.dated.save(dated)
        update, signal = publish_predictions(outputs.dated.load(), outputs.store.load(), run_date)
        outputs.store.save(update)
        predictions = outputs.dated.load()[f"predictions_{run_date}"]()
        return RunResult(predictions, outputs.store.load(), summary, signal)

    return run
