"""Row-local column expressions, written once and run by Spark (batch) or NumPy (a few rows).

Gold features are declared as trees of :class:`Expr` and compiled twice: :func:`to_spark` gives
native pyspark Columns (no Python UDF, so batch stays a Catalyst plan), and :class:`Program`
evaluates the same trees on the driver over NumPy arrays, so scoring one encounter costs about a
millisecond instead of a Spark job. Only the operations the features use exist, each with Spark's
null semantics (non-ANSI): nulls propagate through comparisons and arithmetic,
``and``/``or`` are three-valued, a null ``when`` condition is false, ``isin`` of a null is null,
``regexp_extract`` without a match is ``""``, ``concat_ws`` skips nulls, NaN equals NaN and sorts
above every number, and a string that does not parse (as a Java double, a whole number that fits,
a ``yyyy-MM-dd`` date) becomes null.

Trees are immutable and compared by structure, so a sub-expression used by many features (the
numeric value of ``diag_1``) is evaluated once per call by the driver.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import numpy as np
import pandas as pd

DATE_PATTERN = "yyyy-MM-dd"
KINDS = ("string", "int", "long", "double", "boolean", "date")
_DTYPES = {
    "string": np.dtype(object),
    "int": np.dtype(np.int32),
    "long": np.dtype(np.int64),
    "double": np.dtype(np.float64),
    "boolean": np.dtype(bool),
    "date": np.dtype("datetime64[D]"),
}
_NUMERIC = ("int", "long", "double")


@dataclass(frozen=True)
class Expr:
    """One node: ``op`` and its arguments (child expressions or static values)."""

    op: str
    args: tuple[Any, ...]
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.op, self.args)))

    def __hash__(self) -> int:
        return self._hash

    # comparisons: methods, not ==, so that == stays structural equality (shared sub-trees)
    def eq(self, other: Any) -> Expr:
        return Expr("eq", (self, _expr(other)))

    def ne(self, other: Any) -> Expr:
        return Expr("not", (self.eq(other),))

    def __lt__(self, other: Any) -> Expr:
        return Expr("lt", (self, _expr(other)))

    def __le__(self, other: Any) -> Expr:
        return Expr("le", (self, _expr(other)))

    def __gt__(self, other: Any) -> Expr:
        return Expr("gt", (self, _expr(other)))

    def __ge__(self, other: Any) -> Expr:
        return Expr("ge", (self, _expr(other)))

    def between(self, low: Any, high: Any) -> Expr:
        """``low <= self <= high``, as Spark's ``between`` (an ``and`` of two comparisons)."""
        return (self >= low) & (self <= high)

    def __add__(self, other: Any) -> Expr:
        return Expr("add", (self, _expr(other)))

    def __mul__(self, other: Any) -> Expr:
        return Expr("mul", (self, _expr(other)))

    def __and__(self, other: Any) -> Expr:
        return Expr("and", (self, _expr(other)))

    def __or__(self, other: Any) -> Expr:
        return Expr("or", (self, _expr(other)))

    def __invert__(self) -> Expr:
        return Expr("not", (self,))

    def isnull(self) -> Expr:
        return Expr("isnull", (self,))

    def isin(self, *values: Any) -> Expr:
        if any(v is None for v in values):
            raise ValueError("isin: a null among the values is not supported")
        return Expr("isin", (self, tuple(values)))

    def cast(self, kind: str) -> Expr:
        """A number or boolean to ``double``, a whole number to ``string``, a boolean to ``int``
        (casts that cannot fail, so Spark's plain cast; strings go through :meth:`parse_double`)."""
        if kind not in ("double", "string", "int"):
            raise ValueError(f"cast to {kind!r} is not supported")
        return Expr("cast", (self, kind))

    def parse_double(self) -> Expr:
        """A string's number, null where it does not parse (Spark's ``try_cast``, so the
        result does not depend on ANSI mode)."""
        return Expr("parse_double", (self,))

    def parse_int(self, kind: str) -> Expr:
        """A string's whole number as ``int`` or ``long``; null where it is not one or does not
        fit (Spark's ``try_cast``: surrounding control characters and spaces are ignored, a
        sign is allowed, a decimal point is not)."""
        if kind not in ("int", "long"):
            raise ValueError(f"parse_int to {kind!r}: int or long")
        return Expr("parse_int", (self, kind))

    def to_date(self, pattern: str) -> Expr:
        """A string's date, null where it is not a real day in ``pattern`` (Spark's
        ``try_to_date``; only ``yyyy-MM-dd``, the landing format, is supported)."""
        if pattern != DATE_PATTERN:
            raise ValueError(f"to_date: only {DATE_PATTERN!r} is supported, not {pattern!r}")
        return Expr("to_date", (self, pattern))

    def trim(self) -> Expr:
        """Spark's ``trim``: leading and trailing spaces (U+0020 only, not tabs) removed."""
        return Expr("trim", (self,))

    def lookup(self, mapping: Mapping[int, str]) -> Expr:
        """``mapping[self]`` for whole-number keys; null for a key it lacks (a map lookup)."""
        return Expr("lookup", (self, tuple(mapping.items())))

    def rlike(self, pattern: str) -> Expr:
        """True where the (Java) regex matches anywhere in the value."""
        return Expr("rlike", (self, pattern))

    def startswith(self, prefix: str) -> Expr:
        return Expr("startswith", (self, prefix))

    def substring(self, pos: int, length: int) -> Expr:
        """Spark's ``substring`` for ``pos >= 1`` (1-based, in characters)."""
        if pos < 1 or length < 0:
            raise ValueError("substring: pos must be >= 1 and length >= 0")
        return Expr("substring", (self, pos, length))

    def split_first(self, pattern: str) -> Expr:
        """``split(self, pattern)[0]``: the text before the first match (all of it if none)."""
        return Expr("split_first", (self, pattern))

    def alias(self, name: str) -> Expr:
        return Expr("alias", (self, name))

    def when(self, condition: Expr, value: Any) -> Expr:
        """Another branch of a :func:`when` chain."""
        branches, otherwise = self._open_case()
        return Expr("case", ((*branches, (condition, _expr(value))), otherwise))

    def otherwise(self, value: Any) -> Expr:
        branches, _ = self._open_case()
        return Expr("case", (branches, _expr(value)))

    def _open_case(self) -> tuple[tuple[tuple[Expr, Expr], ...], None]:
        if self.op != "case" or self.args[1] is not None:
            raise TypeError("when/otherwise continue a when(...) chain without otherwise")
        return self.args[0], None

    @property
    def name(self) -> str:
        """The output name: an alias's, or a bare column's."""
        if self.op in ("alias", "col"):
            return self.args[-1] if self.op == "alias" else self.args[0]
        raise ValueError(f"an output expression needs an alias: {self.op}")


def col(name: str) -> Expr:
    return Expr("col", (name,))


def lit(value: str | int | float | bool) -> Expr:
    """A constant; its kind follows Python's type (int is Spark's int when it fits 32 bits)."""
    if isinstance(value, bool):
        kind = "boolean"
    elif isinstance(value, int):
        kind = "int" if -(2**31) <= value < 2**31 else "long"
    elif isinstance(value, float):
        kind = "double"
    elif isinstance(value, str):
        kind = "string"
    else:
        raise TypeError(f"lit: unsupported constant {value!r}")
    return Expr("lit", (value, kind))


def when(condition: Expr, value: Any) -> Expr:
    """The first branch of a case; continue with ``.when`` and end with ``.otherwise``."""
    return Expr("case", (((condition, _expr(value)),), None))


def coalesce(*exprs: Any) -> Expr:
    return Expr("coalesce", tuple(_expr(e) for e in exprs))


def regexp_extract(expr: Expr, pattern: str, group: int) -> Expr:
    return Expr("regexp_extract", (expr, pattern, group))


def concat_ws(sep: str, *exprs: Expr) -> Expr:
    return Expr("concat_ws", (sep, *exprs))


def floor(expr: Expr) -> Expr:
    return Expr("floor", (expr,))


def year(expr: Expr) -> Expr:
    return Expr("year", (expr,))


def total(exprs: Iterable[Expr], start: Any) -> Expr:
    """``start + e1 + e2 + …``, the shape Python's ``sum`` gives."""
    result = _expr(start)
    for expr in exprs:
        result = result + expr
    return result


def any_true(conditions: Iterable[Expr]) -> Expr:
    """OR of ``conditions``, a null counting as false."""
    result = lit(False)
    for condition in conditions:
        result = result | coalesce(condition, lit(False))
    return result


def _expr(value: Any) -> Expr:
    return value if isinstance(value, Expr) else lit(value)


# --------------------------------------------------------------------------- Spark


def to_spark(expr: Expr) -> Any:
    """The pyspark Column of ``expr``: its Spark SQL text, parsed by the JVM in one call.

    Building the Column node by node costs a py4j round trip per node, seconds per run for
    silver's rules and gold's features; one ``F.expr`` per output column costs one. Native
    expressions only (no Python UDF); imports pyspark on first use.
    """
    from pyspark.sql import functions as F

    if expr.op == "alias":
        return F.expr(to_sql(expr.args[0])).alias(expr.args[1])
    return F.expr(to_sql(expr))


def to_sql(expr: Expr) -> str:
    """``expr`` as Spark SQL text, every operation parenthesised, with Spark's own semantics."""
    op, args = expr.op, expr.args
    if op == "col":
        return _sql_name(args[0])
    if op == "lit":
        return _sql_literal(*args)
    if op == "alias":  # inside an expression a name changes nothing
        return to_sql(args[0])
    if op == "case":
        branches, otherwise = args
        whens = " ".join(f"WHEN {to_sql(c)} THEN {to_sql(v)}" for c, v in branches)
        rest = "" if otherwise is None else f" ELSE {to_sql(otherwise)}"
        return f"(CASE {whens}{rest} END)"
    if op == "isin":
        value, values = to_sql(args[0]), ", ".join(to_sql(lit(v)) for v in args[1])
        if not values:  # SQL has no empty IN list; Spark's In of none: null for null, else false
            return f"(CASE WHEN {value} IS NULL THEN CAST(NULL AS BOOLEAN) ELSE FALSE END)"
        return f"({value} IN ({values}))"
    if op == "lookup":
        pairs = ", ".join(f"{to_sql(lit(k))}, {to_sql(lit(v))}" for k, v in args[1])
        return f"map({pairs})[{to_sql(args[0])}]"
    if op == "concat_ws":
        return f"concat_ws({_sql_literal(args[0], 'string')}, {', '.join(map(to_sql, args[1:]))})"
    if op == "coalesce":
        return f"coalesce({', '.join(map(to_sql, args))})"
    if op in ("cast", "parse_int"):
        return f"{'CAST' if op == 'cast' else 'TRY_CAST'}({to_sql(args[0])} AS {args[1].upper()})"
    if op in _SQL_TEMPLATES:
        return _SQL_TEMPLATES[op].format(*map(_sql_argument, args))
    raise ValueError(f"unknown op {op}")  # pragma: no cover - every op built above is handled


# Ops whose arguments are sub-expressions, text constants or whole numbers, in argument order.
_SQL_TEMPLATES = {
    "eq": "({} = {})", "lt": "({} < {})", "le": "({} <= {})", "gt": "({} > {})",
    "ge": "({} >= {})", "add": "({} + {})", "mul": "({} * {})", "and": "({} AND {})",
    "or": "({} OR {})", "not": "(NOT {})", "isnull": "isnull({})", "floor": "floor({})",
    "trim": "trim({})", "year": "year({})", "parse_double": "TRY_CAST({} AS DOUBLE)",
    "regexp_extract": "regexp_extract({}, {}, {})", "split_first": "split({}, {}, -1)[0]",
    "substring": "substring({}, {}, {})", "to_date": "try_to_date({}, {})",
    "rlike": "({} RLIKE {})", "startswith": "startswith({}, {})",
}  # fmt: skip


def _sql_argument(value: Any) -> str:
    if isinstance(value, Expr):
        return to_sql(value)
    return _sql_literal(value, "string") if isinstance(value, str) else str(int(value))


def _sql_name(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _sql_literal(value: Any, kind: str) -> str:
    """A constant of ``kind`` (as :func:`lit` types it) in Spark SQL, of exactly that type."""
    if kind == "string":  # Spark unescapes backslash sequences inside quotes
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if kind == "boolean":
        return "TRUE" if value else "FALSE"
    if kind == "double":
        return f"CAST('{value!r}' AS DOUBLE)"  # 'nan', 'inf' and '-0.0' included
    if kind == "long":
        return f"{value}L"
    return f"CAST({value} AS INT)" if value < 0 else str(value)


# --------------------------------------------------------------------------- driver

# A value on the driver: (kind, data, null). ``data`` is an array of the kind's dtype (strings: an
# object array holding None where null) or, for a constant, a scalar; ``null`` is a bool array, or
# None for "no nulls". Data under a null is meaningless and never read.
_Value = tuple[str, Any, Any]
_Step = Callable[[list[_Value], int], _Value]


class Program:
    """Expressions compiled for the driver: one step per distinct node, in dependency order.

    Build once (at import or service start-up), then call :meth:`evaluate` per request: a call is
    a loop over prepared steps, each one NumPy operation (or one pass over the strings), which is
    what keeps a single row near a millisecond.
    """

    def __init__(self, outputs: Sequence[Expr], where: Expr | None = None) -> None:
        self.names = tuple(e.name for e in outputs)
        self._where = _Plan([where]) if where is not None else None
        self._plan = _Plan(outputs)
        self.inputs = tuple(
            dict.fromkeys([*(self._where.inputs if self._where else ()), *self._plan.inputs])
        )

    def evaluate(
        self, columns: Mapping[str, Any], kinds: Mapping[str, str]
    ) -> dict[str, np.ndarray]:
        """Output arrays for the rows ``where`` keeps (nulls as None, NaN or NaT; see _output).

        ``columns`` maps input names to arrays, lists or pandas Series; ``kinds`` says what each
        input is (``int``, ``string`` …): values are converted to it, so the result never depends
        on how pandas guessed a dtype. A NaN in a float input counts as null, except in a NumPy
        masked array (only its mask is null).
        """
        n = len(columns[self.inputs[0]]) if self.inputs else 0
        inputs = {name: _input(columns[name], kinds[name], n) for name in self.inputs}
        if self._where is not None:
            (keep,) = self._where.run(inputs, n)
            _, data, null = keep
            mask = np.broadcast_to(data if null is None else data & ~null, (n,))
            if not mask.all():
                n = int(mask.sum())
                inputs = {name: _take(value, mask) for name, value in inputs.items()}
        results = self._plan.run(inputs, n)
        return {name: _output(value, n) for name, value in zip(self.names, results, strict=True)}


class _Plan:
    """Distinct nodes of some expressions in post-order: column inputs first, then steps."""

    def __init__(self, exprs: Sequence[Expr]) -> None:
        order: dict[Expr, None] = {}
        for expr in exprs:
            _post_order(expr, order)
        columns = [e for e in order if e.op == "col"]
        nodes = [e for e in order if e.op != "col"]
        slots = {e: i for i, e in enumerate([*columns, *nodes])}
        self.inputs = tuple(e.args[0] for e in columns)
        self._steps: list[_Step] = [_STEPS[e.op](e, slots) for e in nodes]
        self._outputs = [slots[e] for e in exprs]

    def run(self, inputs: Mapping[str, _Value], n: int) -> list[_Value]:
        values = [inputs[name] for name in self.inputs]
        for step in self._steps:
            values.append(step(values, n))
        return [values[slot] for slot in self._outputs]


def _post_order(expr: Expr, order: dict[Expr, None]) -> None:
    if expr in order:
        return
    for child in _children(expr):
        _post_order(child, order)
    order[expr] = None


def _children(expr: Expr) -> list[Expr]:
    if expr.op == "case":
        branches, otherwise = expr.args
        flat = [e for pair in branches for e in pair]
        return flat + ([otherwise] if otherwise is not None else [])
    return [a for a in expr.args if isinstance(a, Expr)]


# ----- conversions at the edges


def _input(values: Any, kind: str, n: int) -> _Value:
    """An input column as ``kind`` (see :meth:`Program.evaluate`)."""
    if isinstance(values, np.ma.MaskedArray):  # the one input that keeps a NaN apart from null
        null = np.ma.getmaskarray(values)
        data = np.asarray(values.data, dtype=_DTYPES[kind])
        if kind == "string":
            data = data.copy()
            data[null] = None
        return kind, data, null if null.any() else None
    typed = isinstance(values, pd.Series) and pd.api.types.is_string_dtype(values.dtype)
    if isinstance(values, pd.Series):
        values = values.to_numpy(dtype=object if kind == "string" else None)
    arr = np.asarray(values, dtype=object if kind == "string" else None)
    if len(arr) != n:
        raise ValueError(f"input columns differ in length ({len(arr)} != {n})")
    dtype = _DTYPES[kind]
    if kind == "string":
        arr = arr.astype(object)
        null = pd.isna(arr)
        if null.any():
            arr = arr.copy()
            arr[null] = None
        else:
            null = None
        if not typed and not _STRING_OR_NULL.issuperset(map(type, arr.tolist())):
            raise TypeError("a string input holds a value that is not a string")
        return kind, arr, null
    if kind == "date":
        data = arr.astype("datetime64[D]") if arr.dtype.kind == "M" else _dates(arr)
        null = np.isnat(data)
        return kind, data, null if null.any() else None
    if arr.dtype.kind in "iub" and (kind != "boolean" or arr.dtype.kind == "b"):
        return kind, arr.astype(dtype), None
    null = pd.isna(arr)
    if not null.any():
        return kind, arr.astype(dtype), None
    data = np.where(null, 0, arr).astype(dtype)
    return kind, data, null


_STRING_OR_NULL = frozenset({str, type(None)})


def _dates(arr: np.ndarray) -> np.ndarray:
    return np.array([None if pd.isna(v) else v for v in arr.tolist()], dtype="datetime64[D]")


def _output(value: _Value, n: int) -> Any:
    """A result as an array of n: strings object (None), date NaT; numbers and booleans are
    pandas masked arrays when they hold a null (NumPy arrays otherwise)."""
    kind, data, null = value
    dtype = _DTYPES[kind]
    data = np.broadcast_to(np.asarray(data, dtype=dtype), (n,)).copy()
    if null is None or not null.any():
        return data
    if kind == "string":
        data[null] = None
    elif kind == "double":  # masked: a NaN that Spark computed stays apart from a null
        return pd.arrays.FloatingArray(data, np.broadcast_to(null, (n,)).copy())
    elif kind == "date":
        data[null] = np.datetime64("NaT")
    elif kind == "boolean":
        return pd.arrays.BooleanArray(data, np.broadcast_to(null, (n,)).copy())
    else:
        return pd.arrays.IntegerArray(data, np.broadcast_to(null, (n,)).copy())
    return data


def _take(value: _Value, mask: np.ndarray) -> _Value:
    kind, data, null = value
    return kind, data[mask], None if null is None else null[mask]


# ----- helpers for the steps


def _common(*kinds: str) -> str:
    """The kind of a result that may come from any of ``kinds`` (numbers widen)."""
    unique = set(kinds)
    if len(unique) == 1:
        return kinds[0]
    if unique <= set(_NUMERIC):
        return max(unique, key=_NUMERIC.index)
    raise TypeError(f"cannot combine kinds {sorted(unique)}")


def _either(a: Any, b: Any) -> Any:
    """Null where either side is null."""
    if a is None:
        return b
    return a if b is None else a | b


def _strings(data: Any, n: int) -> list[Any]:
    return data.tolist() if isinstance(data, np.ndarray) else [data] * n


def _where(take: Any, a: Any, b: Any, kind: str) -> Any:
    out = np.where(take, a, b)
    return out.astype(_DTYPES[kind]) if out.dtype != _DTYPES[kind] else out


def _known(value: _Value) -> tuple[Any, Any]:
    """(known true, known false) of a boolean value."""
    _, data, null = value
    if null is None:
        return data, ~data
    return data & ~null, ~data & ~null


def _isnan(value: _Value) -> Any:
    kind, data, _ = value
    return np.isnan(data) if kind == "double" else False


def _column_map(fn: Callable[[str], Any], null: Any) -> Callable[[list[Any]], list[Any]]:
    """``fn`` over a column of strings (``null`` for None), each distinct string computed once
    and remembered (codes repeat: ~700 distinct diagnoses in 100k rows). The column is then
    looked up in C (set difference, ``map`` of the table's ``__getitem__``) rather than by a
    Python call per value."""
    table: dict[str | None, Any] = {None: null}

    def apply(strings: list[Any]) -> list[Any]:
        new = set(strings).difference(table)
        if new:
            if len(table) + len(new) > _MEMO_LIMIT:
                table.clear()
                table[None] = null
                new = set(strings).difference(table)
            table.update((s, fn(s)) for s in new)
        return list(map(table.__getitem__, strings))

    return apply


_MEMO_LIMIT = 100_000  # distinct strings remembered per step


# ----- the steps: op -> (node, slots) -> step(values, n)


def _step_lit(expr: Expr, slots: dict[Expr, int]) -> _Step:
    value, kind = expr.args
    constant = (kind, np.bool_(value) if kind == "boolean" else value, None)
    return lambda values, n: constant


def _step_isnull(expr: Expr, slots: dict[Expr, int]) -> _Step:
    (i,) = (slots[expr.args[0]],)

    def step(values: list[_Value], n: int) -> _Value:
        null = values[i][2]
        return "boolean", np.bool_(False) if null is None else null, None

    return step


def _step_coalesce(expr: Expr, slots: dict[Expr, int]) -> _Step:
    indices = [slots[a] for a in expr.args]

    def step(values: list[_Value], n: int) -> _Value:
        args = [values[i] for i in indices]
        kind = _common(*(a[0] for a in args))
        _, data, null = args[-1]
        for _, arg_data, arg_null in reversed(args[:-1]):
            if arg_null is None:
                data, null = arg_data, None
            else:
                data = _where(arg_null, data, arg_data, kind)
                null = None if null is None else arg_null & null
        return kind, data, null

    return step


def _step_isin(expr: Expr, slots: dict[Expr, int]) -> _Step:
    i, options = slots[expr.args[0]], expr.args[1]
    if any(isinstance(v, float) and math.isnan(v) for v in options):
        raise ValueError("isin: NaN among the values is not supported")
    as_set = frozenset(options)
    text = all(isinstance(v, str) for v in options)
    number = all(isinstance(v, int | float) and not isinstance(v, bool) for v in options)

    def step(values: list[_Value], n: int) -> _Value:
        kind, data, null = values[i]
        if not ((kind == "string" and text) or (kind in _NUMERIC and number)):
            raise TypeError(f"isin: {kind} values against {options!r}")
        if not isinstance(data, np.ndarray):
            return "boolean", np.bool_(data in as_set), null
        if not options:  # false, or null for a null value, as Spark's empty IN
            return "boolean", np.zeros(len(data), dtype=bool), null
        if len(options) <= 8:  # a few C-level comparisons beat a Python loop over the rows
            hits = data == options[0]
            for option in options[1:]:
                hits |= data == option
        elif kind == "string" or n <= 64:
            hits = np.fromiter(map(as_set.__contains__, data.tolist()), bool, count=len(data))
        else:
            hits = np.isin(data, options)
        return "boolean", hits, null

    return step


def _step_compare(expr: Expr, slots: dict[Expr, int]) -> _Step:
    """eq, lt, le, gt, ge with Spark's NaN order: NaN equals NaN and is above every number."""
    a, b = slots[expr.args[0]], slots[expr.args[1]]
    op = expr.op
    compare = {"eq": np.equal, "lt": np.less, "le": np.less_equal, "gt": np.greater,
               "ge": np.greater_equal}[op]  # fmt: skip

    def step(values: list[_Value], n: int) -> _Value:
        left, right = values[a], values[b]
        kinds = {left[0], right[0]}
        if not (len(kinds) == 1 or kinds <= set(_NUMERIC)) or (
            op != "eq" and kinds & {"string", "boolean"}
        ):
            raise TypeError(f"{op}: cannot compare {left[0]} with {right[0]}")
        data = compare(left[1], right[1])
        if "double" in kinds:
            nan_left, nan_right = _isnan(left), _isnan(right)
            if op == "eq":
                data = data | (nan_left & nan_right)
            elif op in ("gt", "ge"):
                data = data | (nan_left & ~nan_right if op == "gt" else nan_left)
            else:
                data = data | (nan_right & ~nan_left if op == "lt" else nan_right)
        return "boolean", data, _either(left[2], right[2])

    return step


def _step_and_or(expr: Expr, slots: dict[Expr, int]) -> _Step:
    a, b = slots[expr.args[0]], slots[expr.args[1]]
    conjunction = expr.op == "and"

    def step(values: list[_Value], n: int) -> _Value:
        left, right = values[a], values[b]
        if left[0] != "boolean" or right[0] != "boolean":
            raise TypeError(f"{expr.op}: needs booleans, got {left[0]} and {right[0]}")
        if left[2] is None and right[2] is None:
            data = left[1] & right[1] if conjunction else left[1] | right[1]
            return "boolean", data, None
        (left_true, left_false), (right_true, right_false) = _known(left), _known(right)
        if conjunction:
            data, false = left_true & right_true, left_false | right_false
        else:
            data, false = left_true | right_true, left_false & right_false
        return "boolean", data, ~(data | false)

    return step


def _step_not(expr: Expr, slots: dict[Expr, int]) -> _Step:
    i = slots[expr.args[0]]

    def step(values: list[_Value], n: int) -> _Value:
        kind, data, null = values[i]
        if kind != "boolean":
            raise TypeError(f"not: needs a boolean, got {kind}")
        return kind, ~data, null

    return step


def _step_arithmetic(expr: Expr, slots: dict[Expr, int]) -> _Step:
    a, b = slots[expr.args[0]], slots[expr.args[1]]
    operation = np.add if expr.op == "add" else np.multiply

    def step(values: list[_Value], n: int) -> _Value:
        left, right = values[a], values[b]
        kind = _common(left[0], right[0])
        if kind not in _NUMERIC:
            raise TypeError(f"{expr.op}: needs numbers, got {left[0]} and {right[0]}")
        # int and long arrays wrap around on overflow, as Spark's (non-ANSI) arithmetic does
        data = operation(left[1], right[1], dtype=_DTYPES[kind])
        return kind, data, _either(left[2], right[2])

    return step


def _step_floor(expr: Expr, slots: dict[Expr, int]) -> _Step:
    """Spark's floor: a long; NaN becomes 0 and infinities the long range's ends (Java's cast)."""
    i = slots[expr.args[0]]

    def step(values: list[_Value], n: int) -> _Value:
        kind, data, null = values[i]
        if kind in ("int", "long"):
            return "long", np.asarray(data, dtype=np.int64), null
        if kind != "double":
            raise TypeError(f"floor: needs a number, got {kind}")
        floored = np.floor(np.asarray(data, dtype=np.float64))
        high, low = floored >= 2.0**63, floored < -(2.0**63)
        safe = np.where(np.isnan(floored) | high | low, 0.0, floored).astype(np.int64)
        safe = np.where(high, np.iinfo(np.int64).max, np.where(low, np.iinfo(np.int64).min, safe))
        return "long", safe, null

    return step


def _step_cast(expr: Expr, slots: dict[Expr, int]) -> _Step:
    i, target = slots[expr.args[0]], expr.args[1]

    def step(values: list[_Value], n: int) -> _Value:
        kind, data, null = values[i]
        if kind == target:
            return kind, data, null
        if target == "double" and kind in ("int", "long", "boolean"):
            return target, np.asarray(data, dtype=np.float64), null
        if target == "int" and kind == "boolean":
            return target, np.asarray(data, dtype=np.int32), null
        if target == "string" and kind in ("int", "long"):
            text = np.empty(n, dtype=object)
            text[:] = [str(v) for v in np.broadcast_to(data, (n,)).tolist()]
            if null is not None:
                text[null] = None
            return target, text, null
        raise TypeError(f"cast of {kind} to {target} is not supported (strings: parse_double)")

    return step


def _step_parse_double(expr: Expr, slots: dict[Expr, int]) -> _Step:
    return _parsed_step(expr, slots[expr.args[0]], java_double, "double", np.nan)


_INT_RANGES = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+", re.ASCII)


def _step_parse_int(expr: Expr, slots: dict[Expr, int]) -> _Step:
    i, kind = slots[expr.args[0]], expr.args[1]
    low, high = _INT_RANGES[kind]

    def parse(text: str) -> int | None:
        trimmed = text.strip(_CONTROL_AND_SPACE)
        if not _WHOLE_NUMBER.fullmatch(trimmed):
            return None
        number = int(trimmed)
        return number if low <= number <= high else None

    return _parsed_step(expr, i, parse, kind, 0)


def _step_to_date(expr: Expr, slots: dict[Expr, int]) -> _Step:
    """Java's ``uuuu-MM-dd``, strictly: four ASCII year digits (a minus allowed, no plus), two
    each for month and day, a day that exists (proleptic Gregorian, as Spark and NumPy)."""
    shape = re.compile(r"-?[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)

    def parse(text: str) -> np.datetime64 | None:
        if not shape.fullmatch(text):
            return None
        try:
            day = np.datetime64(text, "D")
        except ValueError:  # a month or day out of range
            return None
        return day if str(day) == text else None

    return _parsed_step(expr, slots[expr.args[0]], parse, "date", np.datetime64(0, "D"))


def _parsed_step(expr: Expr, i: int, parse: Callable[[str], Any], kind: str, fill: Any) -> _Step:
    """A step parsing each non-null string to ``kind``: null where ``parse`` gives None."""
    parse_column = _column_map(parse, None)

    def step(values: list[_Value], n: int) -> _Value:
        in_kind, data, _ = values[i]
        if in_kind != "string":
            raise TypeError(f"{expr.op}: needs a string, got {in_kind}")
        parsed = np.empty(n, dtype=object)
        parsed[:] = parse_column(_strings(data, n))
        failed = np.fromiter(map(operator.is_, parsed, repeat(None)), bool, count=n)
        parsed[failed] = fill
        return kind, parsed.astype(_DTYPES[kind]), failed if failed.any() else None

    return step


def _step_lookup(expr: Expr, slots: dict[Expr, int]) -> _Step:
    i, mapping = slots[expr.args[0]], dict(expr.args[1])

    def step(values: list[_Value], n: int) -> _Value:
        kind, data, null = values[i]
        if kind not in ("int", "long"):
            raise TypeError(f"lookup: needs whole numbers, got {kind}")
        keys = np.broadcast_to(data, (n,)).tolist()
        known = ~null if null is not None else np.ones(n, dtype=bool)
        out = np.empty(n, dtype=object)
        out[:] = [
            mapping.get(k) if ok else None for k, ok in zip(keys, known.tolist(), strict=True)
        ]
        missing = np.fromiter((v is None for v in out.tolist()), bool, count=n)
        return "string", out, missing if missing.any() else None

    return step


def _string_step(expr: Expr, slots: dict[Expr, int], fn: Callable[[str], Any], kind: str) -> _Step:
    """A step applying ``fn`` to each non-null string (null in, null out)."""
    i = slots[expr.args[0]]
    apply = _column_map(fn, None if kind == "string" else False)

    def step(values: list[_Value], n: int) -> _Value:
        in_kind, data, null = values[i]
        if in_kind != "string":
            raise TypeError(f"{expr.op}: needs a string, got {in_kind}")
        out = apply(_strings(data, n))
        result = np.empty(len(out), dtype=object) if kind == "string" else None
        if result is None:
            return kind, np.array(out, dtype=_DTYPES[kind]), null
        result[:] = out
        return kind, result, null

    return step


def _step_regexp_extract(expr: Expr, slots: dict[Expr, int]) -> _Step:
    pattern, group = java_regex(expr.args[1]), expr.args[2]

    def extract(s: str) -> str:
        match = pattern.search(s)
        return (match.group(group) or "") if match else ""

    return _string_step(expr, slots, extract, "string")


def _step_split_first(expr: Expr, slots: dict[Expr, int]) -> _Step:
    pattern = java_regex(expr.args[1])

    def first(s: str) -> str:
        for match in pattern.finditer(s):
            if match.end() > 0:  # Java's split never starts with an empty leading item
                return s[: match.start()]
        return s

    return _string_step(expr, slots, first, "string")


def _step_substring(expr: Expr, slots: dict[Expr, int]) -> _Step:
    start, length = expr.args[1] - 1, expr.args[2]
    return _string_step(expr, slots, lambda s: s[start : start + length], "string")


def _step_trim(expr: Expr, slots: dict[Expr, int]) -> _Step:
    return _string_step(expr, slots, lambda s: s.strip(" "), "string")


def _step_rlike(expr: Expr, slots: dict[Expr, int]) -> _Step:
    pattern = java_regex(expr.args[1])
    return _string_step(expr, slots, lambda s: pattern.search(s) is not None, "boolean")


def _step_startswith(expr: Expr, slots: dict[Expr, int]) -> _Step:
    prefix = expr.args[1]
    return _string_step(expr, slots, lambda s: s.startswith(prefix), "boolean")


def _step_case(expr: Expr, slots: dict[Expr, int]) -> _Step:
    branches = [(slots[c], slots[v]) for c, v in expr.args[0]]
    otherwise = slots[expr.args[1]] if expr.args[1] is not None else None

    def step(values: list[_Value], n: int) -> _Value:
        kinds = [values[v][0] for _, v in branches]
        if otherwise is not None:
            kinds.append(values[otherwise][0])
        kind = _common(*kinds)
        if otherwise is not None:
            _, data, null = values[otherwise]
        else:
            data, null = (None if kind == "string" else 0), np.ones(n, dtype=bool)
        for c, v in reversed(branches):
            condition = values[c]
            if condition[0] != "boolean":
                raise TypeError(f"when: the condition is {condition[0]}, not boolean")
            take = condition[1] if condition[2] is None else condition[1] & ~condition[2]
            _, value_data, value_null = values[v]
            data = _where(take, value_data, data, kind)
            if value_null is not None or null is not None:
                null = np.where(
                    take,
                    False if value_null is None else value_null,
                    False if null is None else null,
                )
        return kind, data, null

    return step


def _step_concat_ws(expr: Expr, slots: dict[Expr, int]) -> _Step:
    separator, indices = expr.args[0], [slots[a] for a in expr.args[1:]]

    def step(values: list[_Value], n: int) -> _Value:
        parts = []
        for i in indices:
            kind, data, _ = values[i]
            if kind != "string":
                raise TypeError(f"concat_ws: needs strings, got {kind}")
            parts.append(_strings(data, n))
        out = np.empty(n, dtype=object)
        out[:] = [
            separator.join([p for p in row if p is not None]) for row in zip(*parts, strict=True)
        ]
        return "string", out, None

    return step


def _step_year(expr: Expr, slots: dict[Expr, int]) -> _Step:
    i = slots[expr.args[0]]

    def step(values: list[_Value], n: int) -> _Value:
        kind, data, null = values[i]
        if kind != "date":
            raise TypeError(f"year: needs a date, got {kind}")
        years = np.asarray(data, dtype="datetime64[D]").astype("datetime64[Y]").astype(np.int64)
        return "int", (years + 1970).astype(np.int32), null

    return step


def _step_alias(expr: Expr, slots: dict[Expr, int]) -> _Step:
    i = slots[expr.args[0]]
    return lambda values, n: values[i]


_STEPS: dict[str, Callable[[Expr, dict[Expr, int]], _Step]] = {
    "lit": _step_lit,
    "isnull": _step_isnull,
    "coalesce": _step_coalesce,
    "isin": _step_isin,
    **dict.fromkeys(("eq", "lt", "le", "gt", "ge"), _step_compare),
    "and": _step_and_or,
    "or": _step_and_or,
    "not": _step_not,
    "add": _step_arithmetic,
    "mul": _step_arithmetic,
    "floor": _step_floor,
    "cast": _step_cast,
    "parse_double": _step_parse_double,
    "parse_int": _step_parse_int,
    "to_date": _step_to_date,
    "trim": _step_trim,
    "lookup": _step_lookup,
    "regexp_extract": _step_regexp_extract,
    "split_first": _step_split_first,
    "substring": _step_substring,
    "rlike": _step_rlike,
    "startswith": _step_startswith,
    "case": _step_case,
    "concat_ws": _step_concat_ws,
    "year": _step_year,
    "alias": _step_alias,
}


# ----- Java semantics that Python spells differently

_LINE_END = "\n\r\u0085\u2028\u2029"
_CONTROL_AND_SPACE = "".join(map(chr, range(33)))  # what Spark strips before parsing a number
_JAVA_DOUBLE = re.compile(
    r"[+-]?(?:NaN|Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?)", re.ASCII
)
_JAVA_HEX_DOUBLE = re.compile(
    r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+[fFdD]?", re.ASCII
)
_SPECIAL_DOUBLES = {
    "inf": math.inf, "+inf": math.inf, "infinity": math.inf, "+infinity": math.inf,
    "-inf": -math.inf, "-infinity": -math.inf, "nan": math.nan,
}  # fmt: skip


def java_double(text: str) -> float | None:
    """Spark's cast of a string to double: Java's ``Double.parseDouble`` of the text without
    surrounding control characters and spaces, plus Spark's ``inf``/``nan`` words; None if it
    does not parse (Spark gives null)."""
    trimmed = text.strip(_CONTROL_AND_SPACE)
    if _JAVA_DOUBLE.fullmatch(trimmed):
        if trimmed.lstrip("+-") in ("NaN", "Infinity"):
            return float(trimmed)
        return float(trimmed[:-1] if trimmed[-1] in "fFdD" else trimmed)
    if _JAVA_HEX_DOUBLE.fullmatch(trimmed):
        return float.fromhex(trimmed[:-1] if trimmed[-1] in "fFdD" else trimmed)
    return _SPECIAL_DOUBLES.get(trimmed.lower())


def java_regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` (Java syntax, as Spark reads it) compiled with Python's ``re``.

    ASCII classes as in Java, and outside character classes ``.`` excludes every Java line
    terminator and ``$`` also matches before a final ``\\r\\n``, ``\\r``, ``\\u0085`` …, as Java's.
    Constructs Python lacks (``\\p{…}``) fail to compile rather than match differently.
    """
    out, i, in_class = [], 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == ".":
            char = f"[^{_LINE_END}]"
        elif char == "$":
            char = f"(?=(?:\r\n|[{_LINE_END}])?\\Z)"
        out.append(char)
        i += 1
    return re.compile("".join(out), re.ASCII)
