"""A small synthetic world for monitoring: gold features, labels, predictions and a champion profile.

Scores come from a known logistic model and labels are drawn from those scores, so the "model" is
calibrated and its test metrics are reproducible. The score depends only on utilisation and a few
categories, never on ``num_lab_procedures`` or ``admission_type``: the drift tests shift those two
and expect the score distribution to stay put. Encounter ids start at 9,000,000,000, a range no
count or rate in a report can collide with (the privacy checks search for them).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from readmit_kedro.io.registry import LoadedModel
from readmit_kedro.model.importance import input_means
from readmit_kedro.model.metrics import classification_metrics
from readmit_kedro.model.reference_profile import build_reference_profile
from readmit_kedro.pipelines.training.preprocessing import fit_preprocessor
from readmit_kedro.schema import (
    FEATURE_COLUMNS,
    GOLD_FEATURE_STORE_COLUMNS,
    GOLD_LABEL_STORE_COLUMNS,
    PREDICTION_COLUMNS,
    TARGET,
)
from tests.support.gold import add_comorbidity

RUN_DATE = "2008-12-31"
# The data_processing quality report monitoring reads, with no ordering warning.
CLEAN = {"run_date": RUN_DATE, "ordering_warnings": []}
FIRST_ENCOUNTER_ID = 9_000_000_000
CHAMPION = {"algorithm": "logistic_regression", "version": "v20060101T000000000000Z"}
# What build_alerts and assemble_report get when a test does not compute feature importance.
NOT_EXPLAINED = {"available": False, "reason": "not computed by this test", "model": CHAMPION}
DIAGNOSES = ("Circulatory", "Other", "Respiratory", "Digestive", "Diabetes")
CATEGORIES: dict[str, dict[str, float]] = {
    "race": {"Caucasian": 0.74, "AfricanAmerican": 0.19, "Hispanic": 0.03, "Other": 0.02,
             "Missing": 0.02},
    "gender": {"Female": 0.54, "Male": 0.46},
    "admission_type": {"Emergency": 0.53, "Urgent": 0.18, "Elective": 0.19, "Missing": 0.10},
    "admission_source": {"Emergency room": 0.57, "Referral": 0.30, "Transfer": 0.07,
                         "Missing": 0.06},
    "discharge_group": {"Home": 0.60, "Home with care": 0.13, "Transferred": 0.21,
                        "Left AMA": 0.01, "Other": 0.05},
    # two rare specialties on either side of the 0.5% fold-into-other cut
    "medical_specialty": {"Missing": 0.45, "InternalMedicine": 0.17, "Emergency/Trauma": 0.09,
                          "Family/GeneralPractice": 0.08, "Cardiology": 0.2, "Rare-1": 0.006,
                          "Rare-2": 0.004},
    "payer_code": {"Missing": 0.40, "MC": 0.35, "HM": 0.10, "SP": 0.08, "BC": 0.07},
    "diag_1_group": dict(zip(DIAGNOSES, (0.35, 0.25, 0.15, 0.13, 0.12), strict=True)),
    "diag_2_group": dict(zip(DIAGNOSES, (0.30, 0.30, 0.12, 0.10, 0.18), strict=True)),
    "diag_3_group": dict(zip(DIAGNOSES, (0.30, 0.28, 0.10, 0.10, 0.22), strict=True)),
    "max_glu_serum": {"None": 0.947, "Norm": 0.026, ">200": 0.015, ">300": 0.012},
    "a1c_result": {"None": 0.833, ">8": 0.081, "Norm": 0.049, ">7": 0.037},
    "insulin": {"No": 0.466, "Steady": 0.303, "Down": 0.12, "Up": 0.111},
    "med_change": {"No": 0.54, "Yes": 0.46},
    "diabetes_med": {"Yes": 0.77, "No": 0.23},
    "diag_1_code": {"428": 0.3, "414": 0.3, "786": 0.2, "250": 0.2},
    "diag_2_code": {"250": 0.4, "428": 0.3, "276": 0.3},
    "diag_3_code": {"250": 0.5, "401": 0.3, "Missing": 0.2},
    "admission_type_code": {"1": 0.53, "2": 0.18, "3": 0.19, "6": 0.10},
    "admission_source_code": {"7": 0.57, "1": 0.30, "4": 0.07, "9": 0.06},
    "discharge_disposition_code": {"1": 0.60, "6": 0.13, "3": 0.21, "7": 0.01, "18": 0.05},
}  # fmt: skip


def make_features(
    n: int, seed: int, *, end: str = RUN_DATE, days: int = 90, first_id: int = FIRST_ENCOUNTER_ID
) -> pd.DataFrame:
    """Gold feature rows admitted uniformly over the ``days`` days up to ``end``."""
    rng = np.random.default_rng(seed)
    admitted = pd.Timestamp(end) - pd.to_timedelta(rng.integers(0, days, n), unit="D")
    taken = np.minimum(rng.poisson(1.2, n), 6)
    frame = pd.DataFrame(
        {
            "encounter_id": np.arange(first_id, first_id + n, dtype="int64"),
            "patient_nbr": rng.integers(10**6, 10**7, n).astype("int64"),
            "admission_date": admitted.astype("datetime64[ns]"),
            "admission_year": admitted.year.astype("int64"),
            "age_years": rng.choice(np.arange(5.0, 96.0, 10.0), n),
            "time_in_hospital": np.clip(rng.poisson(4.4, n), 1, 14).astype(float),
            "num_lab_procedures": np.clip(rng.normal(43, 19, n).round(), 1, 132),
            "num_procedures": np.minimum(rng.poisson(1.3, n), 6).astype(float),
            "num_medications": np.clip(rng.normal(16, 8, n).round(), 1, 81),
            "number_outpatient": rng.poisson(0.4, n).astype(float),
            "number_emergency": rng.poisson(0.2, n).astype(float),
            "number_inpatient": rng.poisson(0.6, n).astype(float),
            "number_diagnoses": np.clip(rng.normal(7.4, 1.9, n).round(), 1, 16),
            "n_meds_taken": taken.astype(float),
            "n_meds_up": rng.binomial(taken, 0.1).astype(float),
            "n_meds_down": rng.binomial(taken, 0.08).astype(float),
            "prior_year_visits": rng.poisson(1.2, n).astype(float),
        }
    )
    for column, shares in CATEGORIES.items():
        frame[column] = rng.choice(list(shares), n, p=np.asarray(list(shares.values())))
    frame["data_source"] = "synthetic"
    add_comorbidity(frame)
    return frame[list(GOLD_FEATURE_STORE_COLUMNS)]


def true_scores(features: pd.DataFrame) -> np.ndarray:
    """The synthetic world's readmission probability (the champion reproduces it exactly)."""
    logit = (
        -1.1
        + 0.7 * features["number_inpatient"]
        + 0.4 * features["number_emergency"]
        + 0.9 * (features["discharge_group"] == "Transferred")
        + 0.5 * (features["insulin"] == "Up")
        - 0.4 * (features["diabetes_med"] == "No")
    )
    return (1.0 / (1.0 + np.exp(-logit))).to_numpy()


def make_labels(features: pd.DataFrame, scores: np.ndarray, seed: int) -> pd.DataFrame:
    """Gold label rows drawn from ``scores`` (so the scores are calibrated)."""
    rng = np.random.default_rng(seed + 10_000)
    readmitted = (rng.uniform(size=len(scores)) < scores).astype("int64")
    return features[["encounter_id", "patient_nbr", "admission_date", "admission_year"]].assign(
        **{TARGET: readmitted, "readmitted_any": readmitted}
    )[list(GOLD_LABEL_STORE_COLUMNS)]


def make_predictions(features: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    """Prediction store rows as inference writes them: scored the day after admission."""
    scored_day = (features["admission_date"] + pd.Timedelta(days=1)).clip(
        upper=pd.Timestamp(RUN_DATE)
    )
    band = np.select([scores >= 0.5, scores >= 0.2], ["high", "medium"], "low")
    frame = pd.DataFrame(
        {
            "encounter_id": features["encounter_id"].to_numpy(),
            "patient_nbr": features["patient_nbr"].to_numpy(),
            "admission_date": features["admission_date"].to_numpy(),
            "probability": scores,
            "predicted_label": (scores >= 0.5).astype("int64"),
            "risk_band": band,
            "probability_lower": np.clip(scores - 0.05, 0, 1),
            "probability_upper": np.clip(scores + 0.05, 0, 1),
            "model_algorithm": "logistic_regression",
            "model_version": "v20081001T000000000000Z",
            "model_sha256": "ab" * 32,
            "run_date": scored_day.dt.strftime("%Y-%m-%d").to_numpy(),
            "scored_at": (scored_day + pd.Timedelta(hours=6))
            .dt.strftime("%Y-%m-%dT%H:%M:%S+00:00")
            .to_numpy(),
        }
    )
    return frame[list(PREDICTION_COLUMNS)]


def make_world(n: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """``(gold_features, gold_labels, prediction_store)`` of ``n`` encounters in the 90-day window."""
    features = make_features(n, seed)
    scores = true_scores(features)
    return features, make_labels(features, scores, seed), make_predictions(features, scores)


@pytest.fixture(scope="session")
def params() -> dict:
    """The project's real base parameters, so tests exercise the shipped thresholds."""
    from kedro.config import OmegaConfigLoader

    conf = Path(__file__).resolve().parents[3] / "conf"
    return OmegaConfigLoader(str(conf), base_env="base", default_run_env="base")["parameters"]


@pytest.fixture(scope="session")
def config(params: dict) -> dict:
    return params["monitoring_config"]


def training_window() -> pd.DataFrame:
    """The champion's train window: 20k encounters of 1999-2005 with their labels."""
    train = make_features(20_000, seed=1, end="2005-12-31", days=2500)
    return train.assign(**{TARGET: make_labels(train, true_scores(train), seed=1)[TARGET]})


@pytest.fixture(scope="session")
def champion() -> LoadedModel:
    """The served model: training's preprocessor and a logistic regression on the train window."""
    train = training_window()
    preprocess = fit_preprocessor(
        train, {"rare_category_min_frequency": 0.005}, feature_selection=False, seed=0
    )
    model = LogisticRegression(max_iter=1000).fit(
        preprocess.transform(train[list(FEATURE_COLUMNS)]), train[TARGET]
    )
    return LoadedModel(CHAMPION, Pipeline([("preprocess", preprocess), ("model", model)]))


@pytest.fixture(scope="session")
def reference_profile(params: dict, champion: LoadedModel) -> dict:
    """The champion's profile: train window of 20k encounters, test metrics on 10k others."""
    train = training_window()
    test = make_features(10_000, seed=2, end="2007-12-31", days=700, first_id=1)
    test_scores = true_scores(test)
    test_labels = make_labels(test, test_scores, seed=2)[TARGET].to_numpy()
    test_metrics = classification_metrics(
        test_labels, test_scores, params["monitoring_config"]["prediction_threshold"]
    )
    profile = build_reference_profile(
        train, true_scores(train), test_metrics, params["reference_profile_config"]
    )
    # as training's build_champion_reference adds them
    means = input_means(champion.model, [train[list(FEATURE_COLUMNS)]])
    return {**profile, "input_means": means, "champion": CHAMPION}


@contextmanager
def webhook_receiver(status: int = 200) -> Iterator[tuple[str, list[dict]]]:
    """A Slack-like receiver on loopback: records each JSON body POSTed, answers ``status``."""
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append({"path": self.path, "content_type": self.headers["Content-Type"],
                             "body": json.loads(body)})  # fmt: skip
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/monitoring", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict]]]:
    with webhook_receiver() as receiver:
        yield receiver
