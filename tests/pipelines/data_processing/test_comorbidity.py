"""Diabetes sub-codes and the Charlson index, on codes whose answer is known by hand."""

from __future__ import annotations

import pytest

from readmit_kedro.features.expressions import to_spark
from readmit_kedro.pipelines.data_processing.comorbidity import comorbidity_features

COLUMNS = ("diag_1", "diag_2", "diag_3")


@pytest.fixture
def features(spark):
    def compute(*rows: tuple[str | None, str | None, str | None]) -> list[dict]:
        frame = spark.createDataFrame(
            list(rows), schema="diag_1 string, diag_2 string, diag_3 string"
        )
        return [
            row.asDict() for row in frame.select(*map(to_spark, comorbidity_features())).collect()
        ]

    return compute


def test_diabetes_digits_read_the_dropped_zeros(features):
    uncontrolled_type1, plain, renal = features(
        ("250.43", None, None), ("250", "401", None), ("428", "250.6", "250.4")
    )
    assert uncontrolled_type1["dm_complication"] == "4"
    assert (uncontrolled_type1["dm_type1"], uncontrolled_type1["dm_uncontrolled"]) == (1.0, 1.0)
    assert uncontrolled_type1["dm_primary"] == 1.0
    assert plain["dm_complication"] == "0"  # "250" is 250.00
    assert (plain["dm_type1"], plain["dm_n_complication_codes"]) == (0.0, 0.0)
    assert renal["dm_complication"] == "6"  # the first-listed 250 code
    assert renal["dm_n_complication_codes"] == 2.0
    assert renal["dm_primary"] == 0.0


def test_charlson_counts_each_condition_once_and_the_severe_form_only(features):
    (row,) = features(("428", "428.31", "196.5"))  # heart failure twice, metastatic cancer
    assert row["cci_chf"] == 1.0 and row["cci_metastatic"] == 1.0
    assert row["n_charlson_conditions"] == 2.0
    assert row["charlson"] == 1.0 + 6.0
    (cancer,) = features(("174.9", "V43.4", None))  # breast cancer, peripheral vascular (a V code)
    assert cancer["cci_cancer"] == 1.0 and cancer["charlson"] == 2.0 + 1.0


def test_diabetes_with_complications_replaces_the_simple_form(features):
    (row,) = features(("250.01", "250.52", None))
    assert row["charlson"] == 2.0 and row["n_charlson_conditions"] == 1.0


def test_missing_and_external_codes_count_nothing(features):
    (row,) = features((None, "E909", "V57"))
    assert row["dm_complication"] == "none"
    assert row["charlson"] == 0.0 and row["n_charlson_conditions"] == 0.0
