"""A served champion: the inference tests' small calibrated xgboost, in a real registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from readmit_kedro.io.extracts import IdMappingDataset
from readmit_kedro.io.model_store import ServingModelDataset
from readmit_kedro.landing.monthly import admission_dates
from readmit_kedro.landing.synthetic import synthetic_frame
from readmit_kedro.schema import LANDING_COLUMNS
from readmit_kedro.serving.app import API_KEY_HEADER, create_app
from readmit_kedro.serving.scoring import Scorer
from tests.pipelines.inference.conftest import (  # noqa: F401 (fixtures used here)
    champion_bundle,
    config,
    gold,
    outputs,
    registry,
    run_inference,
)

API_KEY = "test"  # a placeholder the secrets scan allows


@pytest.fixture(scope="session")
def params() -> dict[str, Any]:
    """The shipped base parameters (inference_config, data_quality, features)."""
    from kedro.config import OmegaConfigLoader

    conf = Path(__file__).resolve().parents[2] / "conf"
    return OmegaConfigLoader(str(conf), base_env="base", default_run_env="base")["parameters"]


@pytest.fixture(scope="session")
def id_mapping() -> pd.DataFrame:
    return IdMappingDataset(filepath="package://readmit_kedro/resources/IDs_mapping.csv").load()


@pytest.fixture(scope="session")
def landing_rows() -> pd.DataFrame:
    """3,000 synthetic encounters in the landing layout, stand-in admission dates 1999-2008."""
    raw = synthetic_frame(rows=3_000, seed=20)
    dates = admission_dates(raw["encounter_id"].astype(np.int64).to_numpy())
    return raw.assign(admission_date=dates.astype(str))[list(LANDING_COLUMNS)]


@pytest.fixture
def client(registry, params, id_mapping) -> Iterator[TestClient]:  # noqa: F811 (a fixture)
    """The service on the registry's champion, started (lifespan run) and authenticated."""

    def load() -> Scorer:
        return Scorer(ServingModelDataset(path=registry.root).load(), params, id_mapping)

    with TestClient(create_app(load, API_KEY), headers={API_KEY_HEADER: API_KEY}) as client:
        yield client
