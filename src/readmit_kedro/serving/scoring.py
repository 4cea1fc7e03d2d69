"""Scoring encounters as a hospital system sends them: one landing (UCI) record at a time.

A record goes through the batch path's own code, evaluated on the driver instead of by Spark:
silver's row rules (:class:`~readmit_kedro.pipelines.data_processing.silver.DriverRules`), gold's
feature spec (:func:`~readmit_kedro.pipelines.data_processing.gold.gold_feature_values`),
inference's input repair (:func:`~readmit_kedro.pipelines.inference.inputs.scorable`) and its
scoring functions. So a request gets the probability the batch pipeline would write for the same
encounter, without a copy of any rule that could drift.

Every gold feature comes from the encounter's own row (history is the source's prior-year visit
counts), so a request needs no other encounter: there is no patient history to look up.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline

from readmit_kedro.io.registry import LoadedModel
from readmit_kedro.model.calibration import uncalibrated
from readmit_kedro.model.compiled import CompiledBundle
from readmit_kedro.model.explain import TreeExplainer
from readmit_kedro.pipelines.data_processing.gold import (
    gold_feature_inputs,
    gold_feature_values,
    gold_features_frame,
)
from readmit_kedro.pipelines.data_processing.silver import DriverRules
from readmit_kedro.pipelines.inference.inputs import scorable
from readmit_kedro.pipelines.inference.nodes import (
    predicted_labels,
    resolve_model,
    risk_bands,
    scored_batches,
)
from readmit_kedro.schema import LANDING_COLUMNS

OUTCOME = "readmitted"  # the label: unknown when a patient is discharged
OUTCOME_PLACEHOLDER = "NO"  # what silver's rules check when a request leaves it out
REQUIRED = tuple(c for c in LANDING_COLUMNS if c != OUTCOME)
KNOWN = frozenset(LANDING_COLUMNS)  # a set: the tuple's linear lookups were 40 ms of 1,000 records
DATA_SOURCE = "api"  # gold's data_source of a request (lineage only, never a model input)
MAX_BATCH = 1_000
TOP_CONTRIBUTIONS = 5


@dataclass(frozen=True)
class FieldError:
    """Why a record was refused: the field (a landing column) and the rule it broke."""

    field: str | None
    rule: str
    record: int | None = None  # position in a batch request

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items() if v is not None or k == "field"}


class InvalidRequest(ValueError):
    """The request broke input rules; ``errors`` names each field and rule."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__(f"{len(errors)} input error(s)")
        self.errors = errors


class Scorer:
    """The serving model with everything a request needs, checked and compiled once at start."""

    def __init__(
        self, serving_model: LoadedModel, params: Mapping[str, Any], id_mapping: pd.DataFrame
    ) -> None:
        self.config = params["inference_config"]
        self.model = resolve_model(serving_model, self.config)  # checks the config too
        self.bundle = serving_model.model
        _one_thread(self.bundle)
        split = CompiledBundle.of(self.bundle)  # compiled once: each request only encodes
        self.scoring = self.bundle if split is None else split
        # A compiled bundle encodes column arrays: no DataFrame is built per request.
        self.frameless = split is not None and split.compiled
        self.explainer = TreeExplainer.of(self.bundle)  # None: this algorithm is not explained
        self.data_quality = params["data_quality"]
        self.feature_rules = params["features"]
        self.silver = DriverRules(id_mapping, self.data_quality)  # checked and compiled once
        # Requests may leave the outcome out (a placeholder stands in): no feature may read it.
        if OUTCOME in gold_feature_inputs(self.feature_rules):
            raise ValueError(f"a gold feature reads {OUTCOME!r}, which requests do not carry")
        self.with_intervals = bool(
            self.config["confidence_intervals"] and self.model["supports_intervals"]
        )
        self.loaded_at = datetime.now(tz=UTC).isoformat()

    def describe(self) -> dict[str, Any]:
        """What /health reports: the model's identity and when it was loaded."""
        keys = ("algorithm", "version", "sha256", "selected_by")
        return {**{k: self.model[k] for k in keys}, "loaded_at": self.loaded_at}

    def score(self, records: Sequence[Any], *, explain: bool = True) -> list[dict[str, Any]]:
        """One result per record, in order; :class:`InvalidRequest` naming every bad field.

        A valid record outside the model population (a death or hospice discharge) is not
        scored, as in batch, and says so. ``explain``: the top TreeSHAP contributions too
        (null when the served algorithm has no tree explainer).
        """
        errors = [e for i, r in enumerate(records) for e in _shape_errors(r, i)]
        if errors:
            raise InvalidRequest(errors)
        columns = {c: _landing_column(records, c) for c in LANDING_COLUMNS}
        columns["_parse_error"] = [None] * len(records)
        silver = self.silver.silver_rows(columns)
        refused = np.array([rule is not None for rule in silver.pop("_dq_rule")], dtype=bool)
        if refused.any():
            raise InvalidRequest(self._rule_errors(columns, refused))
        in_population = ~np.asarray(silver["excluded_from_model"], dtype=bool)
        scores = self._score(silver, in_population, explain)
        return [
            next(scores) if kept else _not_scored(int(silver["encounter_id"][i]))
            for i, kept in enumerate(in_population.tolist())
        ]

    def _rule_errors(self, columns: dict[str, list[Any]], refused: np.ndarray) -> list[FieldError]:
        rows = np.flatnonzero(refused)
        subset = {c: [values[i] for i in rows] for c, values in columns.items()}
        broken = self.silver.broken_rules(subset)
        return [
            FieldError(field, rule, int(row))
            for row, pairs in zip(rows, broken, strict=True)
            for field, rule in pairs
        ]

    def _score(self, silver: dict[str, Any], keep: np.ndarray, explain: bool):
        """Results of the kept rows, in order (a generator: rows are scored in one batch)."""
        if not keep.any():
            return iter(())
        rows = {c: values[keep] for c, values in silver.items()}
        rows["_data_source"] = [DATA_SOURCE] * int(keep.sum())
        columns = self.model["feature_columns"]
        if self.frameless:
            gold = gold_feature_values(rows, self.feature_rules)
            features = scorable({c: gold[c] for c in columns})  # batch's repair, no counts
        else:
            gold = gold_features_frame(rows, self.feature_rules)
            features = scorable(gold[columns])
        encounters = np.asarray(gold["encounter_id"])
        explained = explain and self.explainer is not None
        probability, lower, upper = np.full((3, len(encounters)), np.nan)
        top: list[list[dict[str, Any]]] = []
        for batch, encoded, scores in scored_batches(
            self.scoring, features, self.config["batch_size"], with_intervals=self.with_intervals
        ):
            probability[batch], lower[batch], upper[batch] = scores
            top += self.explainer.top(encoded, TOP_CONTRIBUTIONS) if explained else []
        labels = predicted_labels(probability, self.config["prediction_threshold"])
        bands = risk_bands(probability, self.config["risk_bands"])
        level = self.model["interval_level"] if self.with_intervals else None
        model = {"algorithm": self.model["algorithm"], "version": self.model["version"]}
        return (
            {
                "encounter_id": int(encounters[i]),
                "scored": True,
                "probability": float(probability[i]),
                "label": int(labels[i]),
                "risk_band": str(bands[i]),
                "interval": None
                if level is None
                else {"level": level, "lower": float(lower[i]), "upper": float(upper[i])},
                "model": model,
                **({"contributions": top[i] if top else None} if explain else {}),
            }
            for i in range(len(encounters))
        )


def _one_thread(bundle: Any) -> None:
    """Predict on one thread: the service's parallelism is its workers and requests. XGBoost's
    two OpenMP threads made one row's ``predict_proba`` 24 ms instead of 0.4 ms (and a row's
    TreeSHAP 16 ms instead of 1.6 ms) on the shared 2-core machine (load average ~7.5).
    The bundle is this Scorer's own copy (loaded for it), so batch runs keep their threads."""
    inner = uncalibrated(bundle)
    estimator = inner.steps[-1][1] if isinstance(inner, Pipeline) else inner
    if "n_jobs" in estimator.get_params():
        estimator.set_params(n_jobs=1)


def _shape_errors(record: Any, index: int) -> list[FieldError]:
    """A record's structural problems: not an object, a missing or unknown column, a wrong type."""
    if not isinstance(record, dict):
        return [FieldError(None, "not_an_object", index)]
    if _well_shaped(record):
        return []
    errors = [FieldError(c, "missing_column", index) for c in REQUIRED if c not in record]
    errors += [FieldError(str(c), "unknown_column", index) for c in record if c not in KNOWN]
    errors += [
        FieldError(c, "wrong_type", index)
        for c, value in record.items()
        if c in KNOWN and not _is_text_or_whole(value)
    ]
    return errors


def _is_text_or_whole(value: Any) -> bool:
    """A landing field is text (``"?"`` or null for unknown); a JSON whole number is its digits."""
    return value is None or isinstance(value, str) or (type(value) is int)


_REQUIRED_SET = frozenset(REQUIRED)
_FIELD_TYPES = frozenset({str, int, type(None)})  # type(True) is bool: a wrong type


def _well_shaped(record: dict) -> bool:
    """The common case of :func:`_shape_errors` (nothing wrong), in set operations at C speed
    rather than field by field in Python (with the column lists, ~4 ms of a batch of 1,000)."""
    return (
        KNOWN.issuperset(record)
        and _REQUIRED_SET.issubset(record)
        and _FIELD_TYPES.issuperset(map(type, record.values()))
    )


def _landing_column(records: Sequence[dict], column: str) -> list[str | None]:
    """One landing column of well-shaped records, as landed text (a whole number as its digits)."""
    default = OUTCOME_PLACEHOLDER if column == OUTCOME else None
    values = [r.get(column, default) for r in records]
    return [_text(v) for v in values] if int in set(map(type, values)) else values


def _text(value: Any) -> str | None:
    return str(value) if type(value) is int else value


def _not_scored(encounter_id: int) -> dict[str, Any]:
    return {
        "encounter_id": encounter_id,
        "scored": False,
        "reason": "death or hospice discharge: outside the model population, as in batch",
    }


@dataclass(frozen=True)
class ModelSource:
    """Where ``readmit serve`` gets its model: the catalog and parameters of a project env.

    The model is inference's ``inference_serving_model`` (the champion, or ``pin`` = (algorithm,
    version)): the same registry, signature and sha256 checks as a batch run.
    """

    project_path: Path
    env: str | None
    pin: tuple[str, str] | None = None

    def scorer(self) -> Scorer:
        """A new :class:`Scorer` (a fresh session, so a new champion is read, never a cache)."""
        context = self._context()
        catalog = context.catalog
        return Scorer(
            catalog.load("inference_serving_model"), context.params, catalog.load("id_mapping")
        )

    def champion_watch(self) -> tuple[Callable[[], dict[str, Any] | None], float] | None:
        """What to poll for a new champion and how often; None when pinned or polling is off."""
        if self.pin is not None:
            return None
        context = self._context()
        seconds = float(context.params["serving"]["champion_poll_seconds"])
        pointer = context.catalog.get("inference_champion_record")
        return (pointer.load, seconds) if seconds > 0 else None

    def _context(self) -> Any:
        from kedro.framework.session import KedroSession
        from kedro.framework.startup import bootstrap_project

        bootstrap_project(self.project_path)
        pin = self.pin
        runtime = {} if pin is None else {
            "inference_config": {"model_algorithm": pin[0], "model_version": pin[1]}
        }  # fmt: skip
        with KedroSession.create(
            project_path=self.project_path, env=self.env, runtime_params=runtime
        ) as session:
            return session.load_context()
