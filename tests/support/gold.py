"""Gold-like feature and label stores built from the schema contract, for tests and benchmarks.

The frames follow ``schema.GOLD_FEATURE_STORE_COLUMNS`` and ``GOLD_LABEL_STORE_COLUMNS`` with the
shapes of the real data (about 1.4 encounters per patient, ~12% positives, a 70-value
``medical_specialty``, diagnosis codes with a long tail of rare ones) and a learnable, partly
non-linear signal driven by utilisation history and a per-patient frailty, so a model that
memorises patients is punished on later years.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from readmit_kedro.io.published import Partitions, partition_fingerprint
from readmit_kedro.schema import GOLD_FEATURE_STORE_COLUMNS, GOLD_LABEL_STORE_COLUMNS

_PAYER_CODES = (
    "Missing", "MC", "HM", "SP", "BC", "MD", "CP", "UN", "CM", "OG", "PO", "DM", "CH", "WC", "OT",
    "MP", "SI", "FR",
)  # fmt: skip
_PAYER_SHARES = (
    0.396, 0.319, 0.062, 0.049, 0.046, 0.035, 0.025, 0.024, 0.019, 0.01, 0.006, 0.005, 0.0015,
    0.0013, 0.0009, 0.0008, 0.0005, 0.0001,
)  # fmt: skip
_CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "race": (
        ("Caucasian", "AfricanAmerican", "Missing", "Hispanic", "Other", "Asian"),
        (0.75, 0.19, 0.02, 0.02, 0.015, 0.005),
    ),
    "gender": (("Female", "Male", "Unknown/Invalid"), (0.5375, 0.4624, 0.0001)),
    "admission_type": (
        ("Emergency", "Urgent", "Elective", "Missing", "Trauma Center", "Newborn"),
        (0.53, 0.18, 0.19, 0.0995, 0.0003, 0.0002),
    ),
    "admission_source": (
        ("Emergency room", "Referral", "Transfer", "Missing", "Other"),
        (0.565, 0.30, 0.065, 0.068, 0.002),
    ),
    "discharge_group": (
        ("Home", "Home with care", "Transferred", "Left AMA", "Missing", "Other"),
        (0.60, 0.13, 0.21, 0.006, 0.05, 0.004),
    ),
    "payer_code": (_PAYER_CODES, _PAYER_SHARES),
    "max_glu_serum": (("None", "Norm", ">200", ">300"), (0.947, 0.026, 0.015, 0.012)),
    "a1c_result": (("None", ">8", "Norm", ">7"), (0.833, 0.081, 0.049, 0.037)),
    "insulin": (("No", "Steady", "Down", "Up"), (0.466, 0.303, 0.12, 0.111)),
    "med_change": (("No", "Yes"), (0.538, 0.462)),
    "diabetes_med": (("Yes", "No"), (0.77, 0.23)),
}
_DIAG_GROUPS: tuple[str, ...] = (
    "Circulatory", "Other", "Respiratory", "Digestive", "Diabetes", "Injury", "Musculoskeletal",
    "Genitourinary", "Neoplasms", "Missing",
)  # fmt: skip
_DIAG_SHARES = (0.30, 0.18, 0.14, 0.09, 0.09, 0.07, 0.05, 0.05, 0.029, 0.001)
_ID_CODES: dict[str, tuple[str, ...]] = {
    "admission_type_code": ("1", "2", "3", "5", "6"),
    "admission_source_code": ("1", "7", "4", "6", "9"),
    "discharge_disposition_code": ("1", "3", "6", "2", "18", "22"),
}
# Effects on the log-odds of a 30-day readmission (zero for anything not listed).
_EFFECTS: dict[str, dict[str, float]] = {
    "discharge_group": {"Transferred": 0.45, "Home with care": 0.25, "Left AMA": 0.6},
    "admission_source": {"Transfer": 0.2, "Emergency room": 0.1},
    "diag_1_group": {"Circulatory": 0.1, "Neoplasms": 0.3, "Diabetes": 0.15},
    "insulin": {"Down": 0.2, "Up": 0.1},
    "a1c_result": {">8": -0.1},
}


def make_gold_like(
    n_encounters: int,
    *,
    years: tuple[int, int] = (1999, 2008),
    seed: int = 0,
    data_source: str = "synthetic",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(gold_features, gold_labels)`` with about ``n_encounters`` rows over ``years``.

    Encounters of a patient are spread over the whole period, so patients recur across the
    train/test/OOT windows exactly as they do in the real history.
    """
    rng = np.random.default_rng(seed)
    n_patients = max(1, int(n_encounters / 1.42))
    per_patient = np.minimum(rng.geometric(0.70, n_patients), 20)
    patient_nbr = np.repeat(rng.choice(10**8, n_patients, replace=False), per_patient)
    frailty = np.repeat(rng.normal(0.0, 0.7, n_patients), per_patient)
    n = len(patient_nbr)

    start = pd.Timestamp(f"{years[0]}-01-01")
    span_days = (pd.Timestamp(f"{years[1]}-12-31") - start).days + 1
    # Later years hold more encounters, as in the real history.
    day = np.floor(span_days * rng.power(1.6, n)).astype(int)
    frame = pd.DataFrame(
        {
            "patient_nbr": patient_nbr.astype("int64"),
            "admission_date": start + pd.to_timedelta(day, unit="D"),
            "frailty": frailty,
        }
    ).sort_values(["admission_date", "patient_nbr"], ignore_index=True)
    frame["encounter_id"] = np.arange(1, n + 1, dtype="int64") * 7 + 100_000
    frame["admission_year"] = frame["admission_date"].dt.year.astype("int64")

    frailty = frame["frailty"].to_numpy()
    hot = np.clip(frailty, 0.0, None)
    frame["age_years"] = np.clip(np.round(rng.normal(66 + 4 * frailty, 15) / 10) * 10 + 5, 5, 95)
    frame["time_in_hospital"] = np.clip(rng.poisson(3.4 + 0.8 * hot), 1, 14).astype(float)
    frame["num_lab_procedures"] = np.clip(rng.normal(43, 19.7, n).round(), 1, 132)
    frame["num_procedures"] = np.minimum(rng.poisson(1.34, n), 6).astype(float)
    frame["num_medications"] = np.clip(rng.normal(16 + 2 * hot, 8), 1, 81).round()
    frame["number_outpatient"] = rng.negative_binomial(0.3, 0.45, n).astype(float)
    frame["number_emergency"] = rng.poisson(0.12 + 0.25 * hot).astype(float)
    frame["number_inpatient"] = rng.poisson(0.35 + 0.9 * hot).astype(float)
    frame["number_diagnoses"] = np.clip(rng.normal(7.4 + 0.5 * frailty, 1.9).round(), 1, 16)
    frame["n_meds_taken"] = np.minimum(rng.poisson(1.2, n), 6).astype(float)
    frame["n_meds_up"] = rng.binomial(frame["n_meds_taken"].astype(int), 0.1).astype(float)
    frame["n_meds_down"] = rng.binomial(frame["n_meds_taken"].astype(int), 0.08).astype(float)

    frame["prior_year_visits"] = frame[
        ["number_outpatient", "number_emergency", "number_inpatient"]
    ].sum(axis=1)

    for column, (values, shares) in _CATEGORIES.items():
        frame[column] = rng.choice(values, n, p=np.asarray(shares) / sum(shares))
    specialty_share = 1.0 / np.arange(1, 71) ** 1.3
    specialty = rng.choice(70, n, p=specialty_share / specialty_share.sum())
    frame["medical_specialty"] = np.where(
        rng.uniform(size=n) < 0.49, "Missing", np.char.add("Specialty-", specialty.astype(str))
    )
    for i in (1, 2, 3):
        frame[f"diag_{i}_group"] = rng.choice(_DIAG_GROUPS, n, p=_DIAG_SHARES)
        frame[f"diag_{i}_code"] = np.char.add("C", rng.zipf(1.6, n).clip(max=400).astype(str))
    for column, codes in _ID_CODES.items():
        frame[column] = rng.choice(codes, n)
    frame["data_source"] = data_source
    add_comorbidity(frame)

    logit = (
        -3.15
        + 0.6 * frailty
        + 0.8 * np.log1p(frame["number_inpatient"])
        + 0.3 * np.log1p(frame["prior_year_visits"])
        + 0.15 * np.log1p(frame["number_emergency"])
        + 0.03 * frame["time_in_hospital"]
        + 0.005 * (frame["age_years"] - 65)
        + 0.35 * (frame["diag_1_code"] == "C2")
        + 0.25 * (frame["medical_specialty"] == "Specialty-3")
        # an interaction that trees find and a linear model only approximates
        + 0.4 * ((frame["num_medications"] > 20) & (frame["number_diagnoses"] >= 9))
        + sum(frame[col].map(effects).fillna(0.0) for col, effects in _EFFECTS.items())
    )
    readmitted_30d = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype("int64")
    readmitted_any = np.maximum(readmitted_30d, (rng.uniform(size=n) < 0.38).astype("int64"))

    labels = frame[["encounter_id", "patient_nbr", "admission_date", "admission_year"]].assign(
        readmitted_30d=readmitted_30d, readmitted_any=readmitted_any
    )
    return frame[list(GOLD_FEATURE_STORE_COLUMNS)], labels[list(GOLD_LABEL_STORE_COLUMNS)]


def add_comorbidity(frame: pd.DataFrame) -> None:
    """The diabetes sub-code and comorbidity columns, derived from the columns already drawn (no
    draws: the other columns and the labels stay what they were before these features existed)."""
    ids = frame["encounter_id"].to_numpy()
    diabetic = frame["diag_1_group"].to_numpy() == "Diabetes"
    frame["dm_complication"] = np.where(diabetic, (ids // 7 % 8).astype(str), "none")
    frame["dm_type1"] = ((ids // 7) % 13 == 0).astype(float)
    frame["dm_uncontrolled"] = ((ids // 7) % 11 == 0).astype(float)
    frame["dm_n_complication_codes"] = (diabetic & (ids // 7 % 8 >= 1)).astype(float)
    frame["dm_primary"] = diabetic.astype(float)
    burden = {"Circulatory": "cci_chf", "Genitourinary": "cci_renal", "Respiratory": "cci_copd",
              "Neoplasms": "cci_cancer"}  # fmt: skip
    for group, column in burden.items():
        frame[column] = sum(frame[f"diag_{i}_group"] == group for i in (1, 2, 3)).clip(upper=1)
        frame[column] = frame[column].astype(float)
    frame["cci_metastatic"] = frame["cci_cancer"] * ((ids // 7) % 5 == 0)
    flags = frame[[*burden.values(), "cci_metastatic"]]
    frame["n_charlson_conditions"] = flags.sum(axis=1) + frame["dm_primary"]
    frame["charlson"] = flags.sum(axis=1) + frame["cci_metastatic"] * 5 + frame["dm_primary"]
    frame["discharge_x_dx1"] = frame["discharge_disposition_code"] + "|" + frame["diag_1_group"]


def window_inputs(
    features: pd.DataFrame, labels: pd.DataFrame
) -> tuple[Partitions, Partitions, dict[str, str], dict[str, str]]:
    """The stores as training's window check and the trigger get them (``gold_*@window`` and
    ``gold_*@fingerprints``): month partitions and the digests their published tables record."""
    return (
        month_partitions(features),
        month_partitions(labels),
        month_fingerprints(features),
        month_fingerprints(labels),
    )


def month_fingerprints(frame: pd.DataFrame) -> dict[str, str]:
    """Admission month (``YYYY-MM``) -> content digest of that month's rows."""
    months = frame["admission_date"].dt.strftime("%Y-%m")
    return {month: partition_fingerprint(rows) for month, rows in frame.groupby(months)}


def month_partitions(frame: pd.DataFrame) -> Partitions:
    """The store as ``PandasPublishedPartitions`` hands it to a node: admission month -> loader."""
    months = frame["admission_date"].dt.strftime("%Y-%m")
    return {
        month: partial(rows.reset_index, drop=True)
        for month, rows in frame.groupby(months, sort=True)
    }


def publish_by_month(
    frame: pd.DataFrame,
    root: Path,
    version_of: Callable[[str], str] = lambda month: "v20260101T000000000000Z",
) -> None:
    """``frame`` as data processing publishes gold: a folder per admission month, a manifest naming
    them (each in the version ``version_of(month)``) in the newest version, and the pointer."""
    months = frame["admission_date"].dt.strftime("%Y-%m")
    partitions = {}
    for month, rows in frame.groupby(months):
        folder = f"{version_of(month)}/admission_month={month}"
        (root / folder).mkdir(parents=True)
        table = pa.Table.from_pandas(rows, preserve_index=False)
        pq.write_table(table, root / folder / "part-0.parquet")
        partitions[month] = folder
    latest = max(folder.split("/")[0] for folder in partitions.values())
    manifest = {"format": 2, "partition_key": "admission_month", "partitions": partitions}
    (root / latest / "_MANIFEST.json").write_text(json.dumps(manifest))
    (root / "_LATEST").write_text(latest)
