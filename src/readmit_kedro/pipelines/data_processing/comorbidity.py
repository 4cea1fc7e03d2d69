"""Diabetes sub-codes and the Charlson comorbidity index, from the encounter's three ICD-9 codes.

Row-local (no other encounter is read) and fixed (nothing is fitted, no label is used), like every
gold feature. They carry what the three-character categories drop: the 4th and 5th digits of a
250.xy code (complication type, type 1, uncontrolled) and the comorbidity burden across all three
diagnoses. Chosen on patient-grouped CV of the train window, confirmed on test (README, "Model
card"); OOT was never looked at.

The source drops trailing zeros: ``250`` is 250.00 and ``250.6`` is 250.60. The Charlson conditions
follow the ICD-9 mapping of Deyo and Quan, cut to what codes of 3-5 characters can say; each
condition counts once per encounter, and a milder form is dropped when its severe form is present.
"""

from __future__ import annotations

from dataclasses import dataclass

from readmit_kedro.features.expressions import (
    Expr,
    any_true,
    coalesce,
    col,
    lit,
    regexp_extract,
    total,
    when,
)

DIAGNOSES = ("diag_1", "diag_2", "diag_3")
DIABETES_CODE = r"^250\.?(\d?)(\d?)$"
COMPLICATION_DIGITS = ("4", "5", "6", "7")  # 250.4-250.7: renal, ophthalmic, neurological, vascular
UNCOMPLICATED_DIGITS = ("0", "1", "2", "3", "8", "9")


@dataclass(frozen=True)
class Codes:
    """The ICD-9 codes of one condition: three-character prefixes, numeric ranges, exact codes."""

    prefixes: tuple[str, ...] = ()
    ranges: tuple[tuple[float, float], ...] = ()
    exact: tuple[str, ...] = ()


CHARLSON: dict[str, tuple[int, Codes]] = {  # condition: (weight, codes)
    "mi": (1, Codes(prefixes=("410", "412"))),
    "chf": (1, Codes(
        prefixes=("428",), ranges=((425.4, 425.99),),
        exact=("398.91", "402.01", "402.11", "402.91", "404.01", "404.03", "404.11", "404.13",
               "404.91", "404.93"),
    )),
    "pvd": (1, Codes(
        prefixes=("440", "441"),
        exact=("443.9", "785.4", "V43.4", "437.3", "447.1", "557.1", "557.9", "093.0"),
    )),
    "cvd": (1, Codes(ranges=((430, 438.99),))),
    "dementia": (1, Codes(prefixes=("290",), exact=("294.1", "331.2"))),
    "copd": (1, Codes(ranges=((490, 505.99),), exact=("506.4", "416.8", "416.9"))),
    "rheum": (1, Codes(prefixes=("710", "714", "725"))),
    "ulcer": (1, Codes(ranges=((531, 534.99),))),
    "mild_liver": (1, Codes(
        prefixes=("570", "571", "070"), exact=("573.3", "573.4", "573.8", "573.9", "V42.7")
    )),
    "hemi": (2, Codes(prefixes=("342",), ranges=((344.0, 344.69),))),
    "renal": (2, Codes(
        prefixes=("582", "585", "586", "V56"), ranges=((583.0, 583.79),),
        exact=("588.0", "V42.0", "V45.1", "403.01", "403.11", "403.91", "404.02", "404.03",
               "404.12", "404.13", "404.92", "404.93"),
    )),
    "cancer": (2, Codes(ranges=((140, 172.99), (174, 195.89), (200, 208.99)))),
    "severe_liver": (3, Codes(ranges=((456.0, 456.29), (572.2, 572.89)))),
    "metastatic": (6, Codes(ranges=((196, 199.99),))),
    "aids": (6, Codes(ranges=((42, 44.99),))),
}  # fmt: skip
DIABETES_WEIGHTS = {"dm_simple": 1, "dm_compl": 2}
# A milder condition does not count when its severe form is present.
SUPERSEDED_BY = {"dm_simple": "dm_compl", "mild_liver": "severe_liver", "cancer": "metastatic"}
FLAGGED = ("chf", "renal", "copd", "cancer", "metastatic")  # also model inputs on their own


def comorbidity_features() -> list[Expr]:
    """The numeric columns ``dm_*``, ``charlson``, ``n_charlson_conditions``, ``cci_*`` and the
    categorical ``dm_complication``, as expressions over a silver row (Spark or driver)."""
    digits = [(_diabetes_digit(c, 1), _diabetes_digit(c, 2)) for c in DIAGNOSES]
    complication = [x for x, _ in digits]
    present = {
        name: any_true(_matches(col(c), codes) for c in DIAGNOSES)
        for name, (_, codes) in CHARLSON.items()
    }
    present["dm_compl"] = any_true(x.isin(*COMPLICATION_DIGITS) for x in complication)
    present["dm_simple"] = any_true(x.isin(*UNCOMPLICATED_DIGITS) for x in complication)
    for milder, severe in SUPERSEDED_BY.items():
        present[milder] = present[milder] & ~present[severe]
    weights = {name: weight for name, (weight, _) in CHARLSON.items()} | DIABETES_WEIGHTS
    return [
        coalesce(*complication, lit("none")).alias("dm_complication"),
        _flag(any_true(y.isin("1", "3") for _, y in digits)).alias("dm_type1"),
        _flag(any_true(y.isin("2", "3") for _, y in digits)).alias("dm_uncontrolled"),
        total((_flag(x.isin(*"123456789")) for x in complication), 0.0).alias(
            "dm_n_complication_codes"
        ),
        _flag(col("diag_1").startswith("250")).alias("dm_primary"),
        total((_flag(present[n]) * w for n, w in weights.items()), 0.0).alias("charlson"),
        total((_flag(present[n]) for n in weights), 0.0).alias("n_charlson_conditions"),
        *[_flag(present[name]).alias(f"cci_{name}") for name in FLAGGED],
    ]


def icd9_number(code: Expr) -> Expr:
    """The numeric value of a code that starts with a digit (``V45``, ``E800``: null)."""
    return when(code.rlike(r"^[0-9]"), code.parse_double())


def _diabetes_digit(column: str, group: int) -> Expr:
    """The 4th (``group`` 1) or 5th (2) digit of a 250.xy code, ``"0"`` if dropped; null otherwise."""
    code = col(column)
    digit = regexp_extract(code, DIABETES_CODE, group)
    return when(code.rlike(DIABETES_CODE), when(digit.eq(""), "0").otherwise(digit))


def _matches(code: Expr, codes: Codes) -> Expr:
    number = icd9_number(code)
    tests = [code.substring(1, 3).isin(*codes.prefixes)] if codes.prefixes else []
    tests += [number.between(low, high) for low, high in codes.ranges]
    tests += [code.isin(*codes.exact)] if codes.exact else []
    return any_true(tests)


def _flag(condition: Expr) -> Expr:
    return coalesce(condition, lit(False)).cast("double")
