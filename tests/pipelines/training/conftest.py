"""Gold-like stores from the schema contract, project parameters, and a training DataCatalog."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog

from readmit_kedro.settings import CONFIG_LOADER_ARGS
from tests.support.gold import make_gold_like, month_fingerprints, month_partitions

PROJECT_CONF = Path(__file__).resolve().parents[3] / "conf"
RUN_DATE = "2008-12-31"


@pytest.fixture(scope="session")
def gold_factory() -> Callable[..., tuple[pd.DataFrame, pd.DataFrame]]:
    """``(n_encounters, seed=…) -> (gold_features, gold_labels)`` following the gold contract."""
    return make_gold_like


@pytest.fixture(scope="session")
def small_gold(gold_factory) -> tuple[pd.DataFrame, pd.DataFrame]:
    """~4000 encounters over 1999-2008: every window has a few hundred rows and both classes."""
    return gold_factory(4000, seed=7)


def load_project_config(env: str, key: str) -> dict[str, Any]:
    """``parameters`` or ``catalog`` of the project's conf as ``kedro run --env <env>`` sees it."""
    loader = OmegaConfigLoader(str(PROJECT_CONF), **{**CONFIG_LOADER_ARGS, "default_run_env": env})
    return loader[key]


@pytest.fixture(scope="session")
def dev_params() -> dict[str, Any]:
    return load_project_config("dev", "parameters")


@pytest.fixture
def training_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_gold, dev_params
) -> Callable[..., DataCatalog]:
    """The project's training catalog (relative paths land in ``tmp_path``), gold in memory.

    Call it with parameter overrides, e.g. ``training_catalog(run_date="2008-06-30")``.
    """
    monkeypatch.chdir(tmp_path)
    features, labels = small_gold

    def build(**overrides: Any) -> DataCatalog:
        catalog = DataCatalog.from_config(
            load_project_config("dev", "catalog"), load_project_config("dev", "credentials")
        )
        for table, frame in (("features", features), ("labels", labels)):
            catalog[f"gold_{table}@pandas"] = frame
            catalog[f"gold_{table}@fingerprints"] = month_fingerprints(frame)
            catalog[f"gold_{table}@partitions"] = catalog[f"gold_{table}@window"] = (
                month_partitions(frame)
            )
        for key, value in {**dev_params, **overrides}.items():
            catalog[f"params:{key}"] = value
        return catalog

    return build
