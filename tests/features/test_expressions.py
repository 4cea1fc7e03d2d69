"""The driver evaluator against Spark, op by op, on the values where null rules differ."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest

from readmit_kedro.features import expressions
from readmit_kedro.features.expressions import (
    Expr,
    Program,
    any_true,
    coalesce,
    col,
    concat_ws,
    floor,
    lit,
    regexp_extract,
    to_spark,
    total,
    when,
    year,
)
from readmit_kedro.pipelines.data_processing.comorbidity import DIABETES_CODE

TEXT = [
    None, "", " ", "250", "250.", "250.0", "250.01", "250.1", "250.123", "250\n", "250\r",
    "250\r\n", "250\u2028", "V45", "E800", "1abc", " 1.5", "1.5 ", "\t7", "1d", "1f", "1e3",
    "1E+3", "1e999", "Infinity", "-Infinity", "inf", "NaN", "nan", "0x1p3", "1_000", "\u0663",
    ".5", "1.", "+1", "--1", "785.9", "785", "459.99", "459.995", "[70-80)", "[0-10)", "[100-)",
    "a.b.c", ".", "..", "ß", "\u00a0250", "abc", "a\nc", "V57.1", "428.31",
    # whole numbers, dates and what silver nulls ("?" and "" once trimmed)
    "?", " ? ", "\t7 ", "007", "-0", "\x001", "1\x1f", "2147483648", "-2147483649",
    "9223372036854775807", "9223372036854775808", "2008-01-01", "2008-1-1", "2008-02-29",
    "2007-02-29", "2008-02-30", "2008-13-01", "2008-00-10", "0008-01-01", "20080-01-01",
    "+2008-01-01", "-2008-01-01", "-0000-01-01", "0000-01-01", "2008-01-01 ",
    "2008-01-01T00:00", "\u0662008-01-01", "1582-10-10",
]  # fmt: skip
N = len(TEXT)
INTS = [None, 0, -1, 7, 2147483647, 1, 25, -2147483648, 18]
DOUBLES = [None, math.nan, math.inf, -math.inf, 0.5, 785.2, 459.99, -0.0, 1e300, 250.0]
BOOLS = [None, True, False]
DATES = [None, dt.date(1999, 12, 31), dt.date(2008, 1, 1), dt.date(1970, 1, 1)]
COLUMNS = {
    "s": ("string", TEXT),
    "t": ("string", TEXT[7:] + TEXT[:7]),
    "i": ("int", [INTS[k % len(INTS)] for k in range(N)]),
    "d": ("double", [DOUBLES[k % len(DOUBLES)] for k in range(N)]),
    "e": ("double", [DOUBLES[(k // len(DOUBLES)) % len(DOUBLES)] for k in range(N)]),
    "b": ("boolean", [BOOLS[k % 3] for k in range(N)]),
    "c": ("boolean", [BOOLS[(k // 3) % 3] for k in range(N)]),
    "dt": ("date", [DATES[k % len(DATES)] for k in range(N)]),
}
SPARK_TYPES = {"string": "string", "int": "int", "double": "double", "boolean": "boolean",
               "date": "date"}  # fmt: skip

s, t, i, d, e, b, c, date = map(col, ("s", "t", "i", "d", "e", "b", "c", "dt"))
number = when(s.rlike(r"^[0-9]"), s.parse_double())
EXPRESSIONS: dict[str, Expr] = {
    "isnull": s.isnull(),
    "coalesce": coalesce(s, "Missing"),
    "coalesce3": coalesce(s, t, lit("x")),
    "isin": s.isin("250", "V45", ""),
    "isin_many": s.isin(*TEXT[1:12]),
    "eq_lit": s.eq("250"),
    "eq_cols": s.eq(t),
    "ne": s.ne("250"),
    "cast_double": s.parse_double(),
    "floor_cast": floor(s.parse_double()),
    "between": s.parse_double().between(250, 250.5),
    "ge_nan": s.parse_double() >= 1,
    "gt_cols": s.parse_double() > d,
    "eq_double_cols": s.parse_double().eq(d),
    "dm_digit_1": regexp_extract(s, DIABETES_CODE, 1),
    "dm_digit_2": regexp_extract(s, DIABETES_CODE, 2),
    "age": regexp_extract(s, r"\[(\d+)-", 1).parse_double() + 5,
    "unmatched_group": regexp_extract(s, r"(V)|(E)", 2),
    "split_first": s.split_first(r"\."),
    "substring": s.substring(1, 3),
    "substring_mid": s.substring(2, 2),
    "rlike_digit": s.rlike(r"^[0-9]"),
    "rlike_diabetes": s.rlike(DIABETES_CODE),
    "rlike_dot": s.rlike("a.c"),
    "rlike_end": s.rlike("^250$"),
    "startswith": s.startswith("250"),
    "startswith_empty": s.startswith(""),
    "case": when(s.isnull(), "M").when(s.startswith("2"), "two").otherwise(s),
    "case_no_otherwise": number,
    "case_null_condition": when(b, "yes").otherwise("no"),
    "floor_number": floor(number).eq(785),
    "number_between": number.between(390, 459.99) | floor(number).eq(785),
    "concat_ws": concat_ws("|", s, t),
    "concat_ws_one": concat_ws("|", s),
    "int_string": i.cast("string"),
    "int_double": i.cast("double"),
    "int_isin": i.isin(1, 7),
    "int_isin_many": i.isin(*range(-3, 30)),
    "int_add_wraps": i + 1,
    "int_mul": i * 2,
    "int_total": total([i, i], 0).cast("double"),
    "bool_double": coalesce(b, lit(False)).cast("double"),
    "bool_int": b.cast("int"),
    "d_ge": d >= 0.5,
    "d_gt": d > 0.5,
    "d_lt": d < 0.5,
    "d_le": d <= 0.5,
    "d_eq_self": d.eq(d),
    "d_gt_e": d > e,
    "d_ge_e": d >= e,
    "d_lt_e": d < e,
    "d_le_e": d <= e,
    "d_eq_e": d.eq(e),
    "d_floor": floor(d),
    "d_mul": d * 2,
    "d_add_i": d + i,
    "and": b & c,
    "or": b | c,
    "not": ~b,
    "any_true": any_true([b, c, s.startswith("2")]),
    "year": year(date),
    "trim": s.trim(),
    "parse_int": s.parse_int("int"),
    "parse_long": s.parse_int("long"),
    "to_date_missing": s.to_date("yyyy-MM-dd").isnull(),
    "to_date_year": year(s.to_date("yyyy-MM-dd")),  # years <= 0 do not collect as Python dates
    "lookup": i.lookup({1: "one", 7: "seven", -1: ""}),
    "lookup_parsed": s.parse_int("int").lookup({7: "seven", 0: "zero"}),
    "isin_nothing": i.isin(),
}


@pytest.fixture
def non_ansi_spark(spark):
    """The project's Spark setting (conf/base/spark.yml): non-ANSI arithmetic."""
    before = spark.conf.get("spark.sql.ansi.enabled")
    spark.conf.set("spark.sql.ansi.enabled", "false")
    yield spark
    spark.conf.set("spark.sql.ansi.enabled", before)


def _plain(value):
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else value.astype(dt.date)
    return value.item() if isinstance(value, np.generic) else value


def _same(left, right) -> bool:
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    return (type(left) is type(right) and left == right) or (left is None and right is None)


def _driver_columns():
    columns = {}
    for name, (kind, values) in COLUMNS.items():
        null = [v is None for v in values]
        fill = {"string": "", "int": 0, "double": 0.0, "boolean": False}.get(
            kind, dt.date(1970, 1, 1)
        )
        data = np.array([fill if v is None else v for v in values], dtype=object)
        columns[name] = np.ma.MaskedArray(data, mask=null)
    return columns


def test_every_op_matches_spark_on_edge_values(non_ansi_spark):
    schema = ", ".join(f"{n} {SPARK_TYPES[k]}" for n, (k, _) in COLUMNS.items())
    rows = list(zip(*(values for _, values in COLUMNS.values()), strict=True))
    frame = non_ansi_spark.createDataFrame(rows, schema=schema)
    names = list(EXPRESSIONS)
    spark_rows = frame.select(*[to_spark(EXPRESSIONS[n].alias(n)) for n in names]).collect()
    program = Program([EXPRESSIONS[n].alias(n) for n in names])
    driver = program.evaluate(_driver_columns(), {n: k for n, (k, _) in COLUMNS.items()})
    mismatches = []
    for name in names:
        got = [_plain(v) for v in driver[name].tolist()]
        for row, spark_row in enumerate(spark_rows):
            expected = spark_row[name]
            if isinstance(expected, bool) or not isinstance(got[row], bool):
                same = _same(got[row], expected)
            else:
                same = False
            if not same:
                mismatches.append((name, TEXT[row], got[row], expected))
    assert not mismatches, "\n".join(map(repr, mismatches))


def test_the_spark_columns_do_not_depend_on_ansi_mode(spark):
    """The parsers are try_casts: a code like ``1abc`` gives null instead of failing the job."""
    before = spark.conf.get("spark.sql.ansi.enabled")
    spark.conf.set("spark.sql.ansi.enabled", "true")
    parsers = {
        "x": col("s").parse_double(),
        "n": col("s").parse_int("int"),
        "day": col("s").to_date("yyyy-MM-dd"),
    }
    try:
        frame = spark.createDataFrame([("1abc",), ("250.1",), ("12",)], schema="s string")
        rows = frame.select(*[to_spark(e.alias(n)) for n, e in parsers.items()]).collect()
    finally:
        spark.conf.set("spark.sql.ansi.enabled", before)
    assert [r["x"] for r in rows] == [None, 250.1, 12.0]
    assert [r["n"] for r in rows] == [None, None, 12]
    assert [r["day"] for r in rows] == [None, None, None]


def test_the_driver_refuses_a_plain_cast_of_a_string_to_double():
    """Spark's plain cast fails or gives null by ANSI mode: strings go through parse_double."""
    with pytest.raises(TypeError, match="parse_double"):
        Program([col("s").cast("double").alias("x")]).evaluate({"s": ["1"]}, {"s": "string"})


def test_a_string_input_must_hold_strings():
    with pytest.raises(TypeError, match="not a string"):
        Program([col("s")]).evaluate({"s": [1, "a"]}, {"s": "string"})


def test_string_steps_stay_right_when_their_memory_of_strings_is_cleared(monkeypatch):
    """Each string step remembers what it computed per distinct string, up to a limit; past it
    the memory starts again, and a column mixing remembered and new strings still maps whole."""
    monkeypatch.setattr(expressions, "_MEMO_LIMIT", 4)
    program = Program([col("s").trim().alias("trimmed"), col("s").parse_int("int").alias("n")])
    kinds = {"s": "string"}
    assert program.evaluate({"s": [" 1", "2 "]}, kinds)["trimmed"].tolist() == ["1", "2"]
    result = program.evaluate({"s": [" 1", "3", None, "4", "x", "6"]}, kinds)
    assert result["trimmed"].tolist() == ["1", "3", None, "4", "x", "6"]
    assert [None if pd.isna(v) else v for v in result["n"]] == [1, 3, None, 4, None, 6]
