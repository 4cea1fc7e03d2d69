"""Gold → model input: join the stores, cut the temporal windows, fit the preprocessor on train.

The preprocessor is fitted once (``preprocess_training_data``) and shared by every algorithm; it
travels inside each registered model bundle, so inference applies exactly the transformation the
model was trained on.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import SelectFromModel
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from readmit_kedro.io.model_store import StreamedWindow, TrainingSnapshot
from readmit_kedro.io.published import Partitions
from readmit_kedro.model.encoding import FrequentCategoryEncoder
from readmit_kedro.model.label_maturity import label_is_mature
from readmit_kedro.pipelines.training.external_memory import past_memory_limit
from readmit_kedro.pipelines.training.modeling import subsample_patients
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
    stats = WindowStats(list(windows))
    stats.add(windows)
    return stats.describe()


class WindowStats:
    """:func:`describe_windows`' figures accumulated over batches of each window's rows.

    Only counts, date bounds and the patient ids (a set of ints per window) are kept, so gold can
    be described one partition at a time; one batch gives exactly ``describe_windows``' result.
    """

    def __init__(self, names: list[str]) -> None:
        self._names = names
        self._rows = dict.fromkeys(names, 0)
        self._positives = dict.fromkeys(names, 0)
        self._patients: dict[str, set[int]] = {name: set() for name in names}
        self._dates: dict[str, list[pd.Timestamp]] = {name: [] for name in names}
        self._sources: dict[str, Counter] = {name: Counter() for name in names}

    def add(self, windows: dict[str, pd.DataFrame]) -> None:
        for name, frame in windows.items():
            self._rows[name] += len(frame)
            self._positives[name] += int(frame[TARGET].sum())
            self._patients[name].update(frame["patient_nbr"])
            self._dates[name] += [frame["admission_date"].min(), frame["admission_date"].max()]
            self._sources[name].update(frame["data_source"].value_counts().to_dict())

    def describe(self) -> dict[str, Any]:
        return {
            "window_stats": {name: self._window(name) for name in self._names},
            "shared_patients": {
                f"{a}&{b}": len(self._patients[a] & self._patients[b])
                for i, a in enumerate(self._names)
                for b in self._names[i + 1 :]
            },
        }

    def _window(self, name: str) -> dict[str, Any]:
        rows, positives = self._rows[name], self._positives[name]
        dates = pd.Series(self._dates[name])
        return {
            "rows": rows,
            "positives": positives,
            "label_rate": positives / rows if rows else None,
            "patients": len(self._patients[name]),
            "first_admission": _iso(dates.min()),
            "last_admission": _iso(dates.max()),
            "data_source": dict(self._sources[name]),
        }


def _iso(value: pd.Timestamp) -> str | None:
    return None if pd.isna(value) else value.date().isoformat()


def preprocess_training_data(
    gold_features: Partitions,
    gold_labels: Partitions,
    training_plan: dict[str, Any],
    training_data_check: dict[str, Any],
    training_config: dict[str, Any],
    model_config: dict[str, Any],
) -> TrainingSnapshot:
    """Split once, fit the preprocessor on train only, and process all three windows with it.

    Gold comes as ``{partition: loader}``. Up to ``external_memory.max_in_memory_rows`` train rows
    (or with ``enabled: false``) both stores are loaded whole, exactly as before; past it they
    are read a partition at a time (:func:`preprocess_in_batches`), so the train task's memory
    does not grow with gold.
    """
    limits = training_config["external_memory"]
    train_rows = training_data_check["rows"]["train"]
    if past_memory_limit(train_rows, limits):
        logger.info(
            "preprocessing in batches: %d train rows, max_in_memory_rows %d",
            train_rows,
            limits["max_in_memory_rows"],
        )
        return preprocess_in_batches(
            gold_features,
            gold_labels,
            training_plan,
            training_data_check,
            training_config,
            model_config,
            fit_rows=limits["max_in_memory_rows"],
        )
    windows = _whole_windows(gold_features, gold_labels, training_plan)
    preprocessor = _fit(windows["train"], training_config, model_config)
    processed = {name: transform_window(preprocessor, frame) for name, frame in windows.items()}
    stats = describe_windows(windows)
    return _snapshot(
        processed, preprocessor, training_plan, training_data_check, training_config, stats
    )


def preprocess_in_batches(
    gold_features: Partitions,
    gold_labels: Partitions,
    training_plan: dict[str, Any],
    training_data_check: dict[str, Any],
    training_config: dict[str, Any],
    model_config: dict[str, Any],
    *,
    fit_rows: int,
) -> TrainingSnapshot:
    """:func:`preprocess_training_data` holding one gold partition at a time, never all of train.

    The preprocessor is fitted on whole patients drawn from the train window, about ``fit_rows``
    rows (:func:`~readmit_kedro.pipelines.training.modeling.subsample_patients`, seeded by
    ``model_config.random_state``; all of train when it holds fewer). Every window is then
    processed partition by partition when the snapshot is saved
    (:class:`~readmit_kedro.io.model_store.StreamedWindow`); test and OOT too, so the task's
    memory does not grow with them either. Gold is read three times: statistics and patients,
    the fit sample, the processing. With every train row in the fit sample the result equals
    the in-memory path's.
    """
    windows_of = partition_windows(gold_features, gold_labels, training_plan)
    stats = WindowStats(list(training_plan["windows"]))
    held: dict[str, dict[str, int]] = {name: {} for name in training_plan["windows"]}
    train_patients = []
    for key, load in windows_of.items():  # 1: statistics, train's patients, where each window is
        windows = load()
        stats.add(windows)
        train_patients.append(windows["train"]["patient_nbr"].to_numpy())
        for name, frame in windows.items():
            if len(frame):
                held[name][key] = len(frame)
    patients = np.concatenate(train_patients)
    chosen = subsample_patients(
        np.arange(len(patients)),
        patients,
        fit_rows / max(len(patients), 1),
        np.random.default_rng(model_config["random_state"]),
    )
    in_sample = np.zeros(len(patients), dtype=bool)
    in_sample[chosen] = True
    sample, offset = [], 0
    for key in held["train"]:  # 2: the fit sample
        train = windows_of[key]()["train"]
        sample.append(train[in_sample[offset : offset + len(train)]])
        offset += len(train)
    preprocessor = _fit(pd.concat(sample, ignore_index=True), training_config, model_config)
    del sample
    logger.info("preprocessor fitted on %d of %d train rows", len(chosen), len(patients))

    def processed(name: str) -> StreamedWindow:
        def frames() -> Iterator[pd.DataFrame]:  # 3: when the snapshot is saved
            for key in held[name]:
                yield transform_window(preprocessor, windows_of[key]()[name])

        return StreamedWindow(frames, sum(held[name].values()))

    return _snapshot(
        {name: processed(name) for name in held},
        preprocessor,
        training_plan,
        training_data_check,
        training_config,
        {**stats.describe(), "preprocessor_fit_rows": len(chosen)},
    )


def partition_windows(
    gold_features: Partitions, gold_labels: Partitions, plan: dict[str, Any]
) -> dict[str, Callable[[], dict[str, pd.DataFrame]]]:
    """{partition: loader of that partition's rows per window (:func:`split_windows`)}.

    Both stores must hold the same partitions; they come in the order the whole table is read,
    so concatenating one window over every partition gives exactly what ``split_windows`` of the
    whole of gold gives.
    """
    if sorted(gold_features) != sorted(gold_labels):
        raise GoldDataError(
            f"gold stores have different partitions: features {sorted(gold_features)}, "
            f"labels {sorted(gold_labels)}"
        )
    if not gold_features:
        raise GoldDataError("gold_features is empty: run the data_processing pipeline first")

    def load(key: str) -> dict[str, pd.DataFrame]:
        return split_windows(join_gold(gold_features[key](), gold_labels[key]()), plan)

    return {key: partial(load, key) for key in gold_features}


def window_batches(
    gold_features: Partitions,
    gold_labels: Partitions,
    plan: dict[str, Any],
    training_data_check: dict[str, Any],
    training_config: dict[str, Any],
) -> list[Callable[[], dict[str, pd.DataFrame]]]:
    """Gold's rows per window as loaders of batches, by the rule preprocessing follows.

    Up to ``external_memory.max_in_memory_rows`` train rows, one batch: the whole of gold, read
    once. Past it, one batch per partition (:func:`partition_windows`), so a node that folds the
    batches holds one partition at a time. Either way the batches give the same rows in the
    same order.
    """
    if past_memory_limit(training_data_check["rows"]["train"], training_config["external_memory"]):
        return list(partition_windows(gold_features, gold_labels, plan).values())
    windows = _whole_windows(gold_features, gold_labels, plan)
    return [lambda: windows]


def window_of(batches: list[Callable[[], dict[str, pd.DataFrame]]], name: str) -> pd.DataFrame:
    """One window's rows over every batch (:func:`window_batches`)."""
    return pd.concat([load()[name] for load in batches], ignore_index=True)


def _whole_windows(
    gold_features: Partitions, gold_labels: Partitions, plan: dict[str, Any]
) -> dict[str, pd.DataFrame]:
    whole = join_gold(_whole(gold_features, "gold_features"), _whole(gold_labels, "gold_labels"))
    return split_windows(whole, plan)


def _whole(partitions: Partitions, name: str) -> pd.DataFrame:
    """Every partition in one frame, in the order the whole table is read."""
    if not partitions:
        raise GoldDataError(f"{name} is empty: run the data_processing pipeline first")
    return pd.concat([load() for load in partitions.values()], ignore_index=True)


def _fit(train: pd.DataFrame, training_config: dict[str, Any], model_config: dict[str, Any]):
    return fit_preprocessor(
        train,
        training_config["preprocessing"],
        feature_selection=training_config["feature_selection"],
        seed=model_config["random_state"],
    )


def _snapshot(
    processed: dict[str, Any],
    preprocessor: Pipeline,
    training_plan: dict[str, Any],
    training_data_check: dict[str, Any],
    training_config: dict[str, Any],
    stats: dict[str, Any],
) -> TrainingSnapshot:
    metadata = {
        **training_plan,
        "partitions": training_data_check["partitions"],
        "input_features": list(FEATURE_COLUMNS),
        "processed_features": list(preprocessor.get_feature_names_out()),
        "preprocessing": training_config["preprocessing"],
        "feature_selection": training_config["feature_selection"],
        "training_inputs_sha256": training_data_check["inputs_sha256"],
        **stats,
    }
    snapshot = TrainingSnapshot(**processed, preprocessor=preprocessor, metadata=metadata)
    logger.info(
        "preprocessed %s rows into %d features; patients shared between windows: %s",
        {name: snapshot.rows(name) for name in processed},
        len(metadata["processed_features"]),
        metadata["shared_patients"],
    )
    return snapshot
