"""Column contracts shared by every pipeline: the raw UCI layout and the gold stores.

Gold is the hand-off between data engineering and modelling, so its columns are defined once here and
checked by both sides (the data_processing pipeline writes them, training/inference validate them).
"""

RAW_COLUMNS: tuple[str, ...] = (
    "encounter_id", "patient_nbr", "race", "gender", "age", "weight", "admission_type_id",
    "discharge_disposition_id", "admission_source_id", "time_in_hospital", "payer_code",
    "medical_specialty", "num_lab_procedures", "num_procedures", "num_medications",
    "number_outpatient", "number_emergency", "number_inpatient", "diag_1", "diag_2", "diag_3",
    "number_diagnoses", "max_glu_serum", "A1Cresult", "metformin", "repaglinide", "nateglinide",
    "chlorpropamide", "glimepiride", "acetohexamide", "glipizide", "glyburide", "tolbutamide",
    "pioglitazone", "rosiglitazone", "acarbose", "miglitol", "troglitazone", "tolazamide",
    "examide", "citoglipton", "insulin", "glyburide-metformin", "glipizide-metformin",
    "glimepiride-pioglitazone", "metformin-rosiglitazone", "metformin-pioglitazone", "change",
    "diabetesMed", "readmitted",
)  # fmt: skip

DRUG_COLUMNS: tuple[str, ...] = RAW_COLUMNS[
    RAW_COLUMNS.index("metformin") : RAW_COLUMNS.index("change")
]
DRUG_VALUES: tuple[str, ...] = ("No", "Steady", "Up", "Down")

# A landing extract is the raw layout plus the stand-in admission date (see data/landing.py).
LANDING_COLUMNS: tuple[str, ...] = (*RAW_COLUMNS, "admission_date")

KEY_COLUMNS: tuple[str, ...] = ("encounter_id", "patient_nbr", "admission_date", "admission_year")

NUMERIC_FEATURES: tuple[str, ...] = (
    "age_years", "time_in_hospital", "num_lab_procedures", "num_procedures", "num_medications",
    "number_outpatient", "number_emergency", "number_inpatient", "number_diagnoses",
    "prior_year_visits", "n_meds_taken", "n_meds_up", "n_meds_down",
    # diabetes sub-codes and comorbidity (pipelines/data_processing/comorbidity.py)
    "dm_type1", "dm_uncontrolled", "dm_n_complication_codes", "dm_primary", "charlson",
    "n_charlson_conditions", "cci_chf", "cci_renal", "cci_copd", "cci_cancer", "cci_metastatic",
)  # fmt: skip

CATEGORICAL_FEATURES: tuple[str, ...] = (
    "race", "gender", "admission_type", "admission_source", "discharge_group", "medical_specialty",
    "payer_code", "diag_1_group", "diag_2_group", "diag_3_group", "max_glu_serum", "a1c_result",
    "insulin", "med_change", "diabetes_med", "diag_1_code", "diag_2_code", "diag_3_code",
    "admission_type_code", "admission_source_code", "discharge_disposition_code",
    "dm_complication", "discharge_x_dx1",
)  # fmt: skip

FEATURE_COLUMNS: tuple[str, ...] = (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES)
GOLD_FEATURE_STORE_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *FEATURE_COLUMNS, "data_source")

TARGET = "readmitted_30d"
LABEL_COLUMNS: tuple[str, ...] = (TARGET, "readmitted_any")
GOLD_LABEL_STORE_COLUMNS: tuple[str, ...] = (*KEY_COLUMNS, *LABEL_COLUMNS)

# The prediction store: one row per scored encounter, appended by inference, read by monitoring.
PREDICTION_COLUMNS: tuple[str, ...] = (
    "encounter_id", "patient_nbr", "admission_date", "probability", "predicted_label",
    "risk_band", "probability_lower", "probability_upper", "model_algorithm", "model_version",
    "model_sha256", "run_date", "scored_at",
)  # fmt: skip
