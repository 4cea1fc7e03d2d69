"""Gold → model input: join the stores, cut the temporal windows, fit the preprocessor on train.

The preprocessor is fitted once (``preprocess_training_data``) and shared by every algorithm; it
travels inside each registered model bundle, so inference applies exactly the transformation the
model was trained on.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import SelectFromModel
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from readmit_kedro.io.model_store import TrainingSnapshot
from readmit_kedro.model.encoding import FrequentCategoryEncoder
from readmit_kedro.model.label_maturity import label_is_mature
from readmit_kedro.schema import (
    CATEGORICAL_FEATURES,
    FEATURE_COLUMNS,
    GOLD_FEATURE_STORE_COLUMNS,
    GOLD_LABEL_STORE_COLUMNS,
    LABEL_COLUMNS,
    NUMERIC_FEATURES,
    TARGET,
)

logger = logging.getLogger(__name__)

# Columns kept next to the processed features: row identity, the CV grouping key and the label.
ROW_KEYS: tuple[str, ...] = ("encounter_id", "patient_nbr", "admission_date")


class GoldDataError(ValueError):
    """Gold cannot feed a training run; the message says what is missing or inconsistent."""


def join_gold(
    features: pd.DataFrame,
    labels: pd.DataFrame,
    contract: tuple[tuple[str, ...], tuple[str, ...]] = (
        GOLD_FEATURE_STORE_COLUMNS,
        GOLD_LABEL_STORE_COLUMNS,
    ),
) -> pd.DataFrame:
    """One row per encounter with features and labels, checked against the gold contract.

    ``contract`` names the columns each store must hold: the whole store by default, fewer for a
    check that loads only the columns it reads.
    """
    for name, frame, expected in zip(
        ("gold_features", "gold_labels"), (features, labels), contract, strict=True
    ):
        missing = [c for c in expected if c not in frame.columns]
        if missing:
            raise GoldDataError(f"{name} lacks contract columns {missing}")
        if frame.empty:
            raise GoldDataError(f"{name} is empty: run the data_processing pipeline first")
    label_columns = ["encounter_id", *(c for c in LABEL_COLUMNS if c in labels.columns)]
    try:
        gold = features.merge(labels[label_columns], on="encounter_id", validate="one_to_one")
    except pd.errors.MergeError as exc:
        raise GoldDataError(f"gold stores are not one row per encounter_id: {exc}") from None
    if len(gold) != len(features) or len(gold) != len(labels):
        raise GoldDataError(
            f"gold stores disagree: {len(features)} feature rows, {len(labels)} label rows, "
            f"{len(gold)} encounters in both"
        )
    return gold


def window_masks(rows: pd.DataFrame, plan: dict[str, Any]) -> dict[str, pd.Series]:
    """Which rows each window holds: by admission year, and only encounters whose label settled.

    A 30-day readmission label is final ``label_horizon_days`` after discharge (the one rule,
    ``model.label_maturity``, monitoring uses too); anything newer than that at ``run_date`` would
    be a negative only because the future has not happened yet.
    """
    settled = label_is_mature(
        rows["admission_date"],
        rows["time_in_hospital"],
        plan["run_date"],
        plan["label_horizon_days"],
    )
    year = rows["admission_date"].dt.year
    return {
        name: settled & year.between(w["start_year"], w["end_year"])
        for name, w in plan["windows"].items()
    }


def split_windows(gold: pd.DataFrame, plan: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The rows of each window (:func:`window_masks`)."""
    return {
        name: gold[mask].reset_index(drop=True) for name, mask in window_masks(gold, plan).items()
    }


def fit_preprocessor(
    train: pd.DataFrame, preprocessing: dict[str, Any], *, feature_selection: bool, seed: int
) -> Pipeline:
    """Impute, scale and one-hot encode the gold features, fitted on the train window only.

    Categories rarer than ``rare_category_min_frequency`` of train rows, and categories first seen
    after training, share one "infrequent" column (``encoding.FrequentCategoryEncoder``), so a new
    hospital code cannot break inference.
    Optional L1 feature selection keeps the columns a sparse logistic regression relies on.
    """
    encode = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True), StandardScaler()
                ),
                list(NUMERIC_FEATURES),
            ),
            (
                "cat",
                FrequentCategoryEncoder(preprocessing["rare_category_min_frequency"] or None),
                list(CATEGORICAL_FEATURES),
            ),
        ]
    )
    steps: list[tuple[str, Any]] = [("encode", encode)]
    if feature_selection:
        selector = LogisticRegression(
            l1_ratio=1.0,
            solver="liblinear",
            C=preprocessing["feature_selection_c"],
            class_weight="balanced",
            random_state=seed,
        )
        steps.append(("select", SelectFromModel(selector)))
    return Pipeline(steps).fit(train[list(FEATURE_COLUMNS)], train[TARGET])


def transform_window(preprocessor: Pipeline, window: pd.DataFrame) -> pd.DataFrame:
    """Row keys, processed feature columns (float64) and the target of one window."""
    values = preprocessor.transform(window[list(FEATURE_COLUMNS)])
    processed = pd.DataFrame(
        np.asarray(values, dtype="float64"),
        columns=list(preprocessor.get_feature_names_out()),
        index=window.index,
    )
    return pd.concat([window[list(ROW_KEYS)], processed, window[[TARGET]]], axis=1)


def describe_windows(windows: dict[str, pd.DataFrame]) -> dict[str, Any]:
    """Row counts, label rates, patients, data sources and date ranges per window, and overlaps."""
    patients = {name: set(frame["patient_nbr"]) for name, frame in windows.items()}
    names = list(windows)
    return {
        "window_stats": {
            name: {
                "rows": len(frame),
                "positives": int(frame[TARGET].sum()),
                "label_rate": float(frame[TARGET].mean()) if len(frame) else None,
                "patients": len(patients[name]),
                "first_admission": _iso(frame["admission_date"].min()),
                "last_admission": _iso(frame["admission_date"].max()),
                "data_source": frame["data_source"].value_counts().to_dict(),
            }
            for name, frame in windows.items()
        },
        "shared_patients": {
            f"{a}&{b}": len(patients[a] & patients[b])
            for i, a in enumerate(names)
            for b in names[i + 1 :]
        },
    }


def _iso(value: pd.Timestamp) -> str | None:
    return None if pd.isna(value) else value.date().isoformat()


def preprocess_training_data(
    gold_features: pd.DataFrame,
    gold_labels: pd.DataFrame,
    training_plan: dict[str, Any],
    training_data_check: dict[str, Any],
    training_config: dict[str, Any],
    model_config: dict[str, Any],
) -> TrainingSnapshot:
    """Split once, fit the preprocessor on train only, and process all three windows with it."""
    windows = split_windows(join_gold(gold_features, gold_labels), training_plan)
    preprocessor = fit_preprocessor(
        windows["train"],
        training_config["preprocessing"],
        feature_selection=training_config["feature_selection"],
        seed=model_config["random_state"],
    )
    processed = {name: transform_window(preprocessor, frame) for name, frame in windows.items()}
    metadata = {
        **training_plan,
        "partitions": training_data_check["partitions"],
        "input_features": list(FEATURE_COLUMNS),
        "processed_features": list(preprocessor.get_feature_names_out()),
        "preprocessing": training_config["preprocessing"],
        "feature_selection": training_config["feature_selection"],
        "training_inputs_sha256": training_data_check["inputs_sha256"],
        **describe_windows(windows),
    }
    logger.info(
        "preprocessed %s rows into %d features; patients shared between windows: %s",
        {name: len(frame) for name, frame in processed.items()},
        len(metadata["processed_features"]),
        metadata["shared_patients"],
    )
    return TrainingSnapshot(**processed, preprocessor=preprocessor, metadata=metadata)
