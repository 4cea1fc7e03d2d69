"""Gold: the feature and label stores, one row per encounter of the model population.

Gold is the hand-off to modelling, so its columns are the contract in ``readmit_kedro.schema``.
``features`` is checked before silver is read, so a malformed group fails naming its key instead
of deep in Spark, or of encounters silently grouped as "Other".

Every feature and label comes from the encounter's own silver row (no value reads another
encounter), so gold is updated per partition: an admission month is recomputed exactly when its
silver partition changed since gold was built (the gold manifest records which silver folder each
month was built from), and months silver no longer has are dropped. A patient's late-arriving
earlier encounter therefore changes nothing in that patient's later rows: there is no
cross-encounter feature or label to refresh. ``full_rebuild`` recomputes every month.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from readmit_kedro.features.expressions import (
    Expr,
    Program,
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
from readmit_kedro.io.published import TableSnapshot, TableUpdate
from readmit_kedro.pipelines.data_processing.comorbidity import comorbidity_features, icd9_number
from readmit_kedro.pipelines.data_processing.silver import (
    ID_COLUMNS,
    INTEGER_COLUMNS,
    PARTITION_KEY,
    _fingerprint,
    admission_month,
    is_int_list,
    snake_case,
)
from readmit_kedro.run_context import Problems
from readmit_kedro.schema import (
    DRUG_COLUMNS,
    DRUG_VALUES,
    GOLD_FEATURE_STORE_COLUMNS,
    GOLD_LABEL_STORE_COLUMNS,
    NUMERIC_FEATURES,
    TARGET,
)

GROUPINGS = ("admission_source_groups", "discharge_groups")


@dataclass(frozen=True)
class FeatureGroups:
    """``params:features``, validated: which ids make up each admission source / discharge group."""

    admission_source_groups: dict[str, tuple[int, ...]]
    discharge_groups: dict[str, tuple[int, ...]]

    @classmethod
    def parse(cls, config: Any) -> FeatureGroups:
        """``params:features`` as :class:`FeatureGroups`; ConfigError naming every bad key."""
        problems = Problems("features", config)
        problems.raise_if_any()  # not a mapping: nothing below could be checked
        sections = {key: Problems(f"features.{key}", problems.config.get(key)) for key in GROUPINGS}
        for section in sections.values():
            for group in section.config:
                section.check(group, is_int_list, "must be a list of ints")
            problems.messages += section.messages
        problems.raise_if_any()
        return cls(
            **{
                key: {group: tuple(ids) for group, ids in section.config.items()}
                for key, section in sections.items()
            }
        )


def gold_feature_spec(groups: FeatureGroups) -> tuple[Expr, ...]:
    """The gold feature store's columns, in store order, as expressions over a silver row.

    One definition for both engines: :func:`build_gold_features` compiles it to Spark and
    :func:`gold_features_frame` evaluates it on the driver (a few encounters, no Spark job).
    Every feature comes from the encounter's own row. History is the source's own prior-year
    visit counts (``number_inpatient`` …), never counted across rows: the stand-in admission
    dates follow encounter_id, which stops being time order in mid-2007 (see the ordering checks
    of the quality report), so "earlier encounters of the patient" would count later ones there.
    """
    drugs = [snake_case(d) for d in DRUG_COLUMNS]
    visits = ("number_outpatient", "number_emergency", "number_inpatient")
    features = [
        col("encounter_id"),
        col("patient_nbr"),
        col("admission_date"),
        year(col("admission_date")).alias("admission_year"),
        (regexp_extract(col("age"), r"\[(\d+)-", 1).parse_double() + 5).alias("age_years"),
        *[col(c).cast("double").alias(c) for c in NUMERIC_FEATURES[1:9]],
        total(map(col, visits), 0).cast("double").alias("prior_year_visits"),
        _count_equal(drugs, *DRUG_VALUES[1:]).alias("n_meds_taken"),
        _count_equal(drugs, "Up").alias("n_meds_up"),
        _count_equal(drugs, "Down").alias("n_meds_down"),
        _category("race"),
        _category("gender"),
        _admission_type().alias("admission_type"),
        _grouped("admission_source_id", groups.admission_source_groups).alias("admission_source"),
        _grouped("discharge_disposition_id", groups.discharge_groups).alias("discharge_group"),
        _category("medical_specialty"),
        _category("payer_code"),
        *[_icd9_group(f"diag_{i}").alias(f"diag_{i}_group") for i in (1, 2, 3)],
        _category("max_glu_serum"),
        _category("a1_cresult").alias("a1c_result"),
        _category("insulin"),
        when(col("change").eq("Ch"), "Yes").otherwise("No").alias("med_change"),
        _category("diabetes_med"),
        *[_icd9_category(f"diag_{i}").alias(f"diag_{i}_code") for i in (1, 2, 3)],
        *[_id_code(c).alias(c.replace("_id", "_code")) for c in ID_COLUMNS],
        *comorbidity_features(),
        # how a stay ended matters differently by its primary diagnosis
        concat_ws("|", _id_code("discharge_disposition_id"), _icd9_group("diag_1")).alias(
            "discharge_x_dx1"
        ),
        col("_data_source").alias("data_source"),
    ]
    by_name = {feature.name: feature for feature in features}
    return tuple(by_name[name] for name in GOLD_FEATURE_STORE_COLUMNS)


MODEL_POPULATION = ~col("excluded_from_model")  # death or hospice discharges are not scored


def build_gold_features(silver: DataFrame, feature_rules: dict[str, Any]) -> DataFrame:
    """One row per encounter of the model population, with features known at discharge.

    :func:`gold_feature_spec` compiled to native Spark columns (no Python UDF).
    """
    spec = gold_feature_spec(FeatureGroups.parse(feature_rules))
    return silver.where(to_spark(MODEL_POPULATION)).select(*[to_spark(e) for e in spec])


def gold_features_frame(silver_rows: pd.DataFrame, feature_rules: dict[str, Any]) -> pd.DataFrame:
    """:func:`build_gold_features` for a few silver rows on the driver, without Spark.

    Same spec, same values and the dtypes of the feature store as pandas reads it. Rows out of
    the model population are dropped, as in batch. Pandas costs more than the features for one
    row (see :func:`gold_feature_values` for the path without it).
    """
    values = gold_feature_values(silver_rows, feature_rules)
    return pd.DataFrame({name: _store_dtype(array) for name, array in values.items()})


def gold_feature_values(
    silver_columns: Mapping[str, Any], feature_rules: dict[str, Any]
) -> dict[str, Any]:
    """The gold features of some silver rows as arrays by column name, in store order.

    ``silver_columns`` maps silver column names to equal-length lists, arrays or Series (a
    DataFrame works too); values are converted to silver's types (``silver_kinds``). The fast
    path for a service: one encounter costs a few milliseconds, no pandas, no Spark.
    """
    program = _program(_fingerprint(feature_rules), feature_rules)
    return program.evaluate(silver_columns, silver_kinds(program.inputs))


def gold_feature_inputs(feature_rules: dict[str, Any]) -> tuple[str, ...]:
    """The silver columns the features read (the service checks the label is not one)."""
    return _program(_fingerprint(feature_rules), feature_rules).inputs


def silver_kinds(columns: tuple[str, ...]) -> dict[str, str]:
    """The kind of each silver column (``silver.silver_values``): what the driver converts inputs to."""
    special = {"encounter_id": "long", "patient_nbr": "long", "admission_date": "date",
               "excluded_from_model": "boolean"}  # fmt: skip
    return {c: special.get(c, "int" if c in INTEGER_COLUMNS else "string") for c in columns}


def _program(rules: str, feature_rules: dict[str, Any]) -> Program:
    """The compiled spec, built once per feature rules (compiling costs ~10 ms, a call ~1 ms)."""
    if rules not in _PROGRAMS:
        _PROGRAMS[rules] = Program(
            gold_feature_spec(FeatureGroups.parse(feature_rules)), where=MODEL_POPULATION
        )
    return _PROGRAMS[rules]


_PROGRAMS: dict[str, Program] = {}


def _store_dtype(values: Any) -> Any:
    """The feature store's pandas dtype: dates datetime64[ms], strings str, numbers as stored."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        return values.astype("datetime64[ms]")
    if isinstance(values, np.ndarray) and values.dtype == object:
        return pd.array(values, dtype="str")
    return values


def gold_label_spec() -> tuple[Expr, ...]:
    """The label store's columns as expressions over a silver row: 30-day readmission (the
    target) and any readmission, per encounter."""
    readmitted = col("readmitted")
    labels = {
        TARGET: readmitted.eq("<30").cast("int").alias(TARGET),
        "readmitted_any": readmitted.ne("NO").cast("int").alias("readmitted_any"),
    }
    keys = {c: col(c) for c in ("encounter_id", "patient_nbr", "admission_date")}
    keys["admission_year"] = year(col("admission_date")).alias("admission_year")
    return tuple({**keys, **labels}[name] for name in GOLD_LABEL_STORE_COLUMNS)


def build_gold_labels(silver: DataFrame) -> DataFrame:
    """The label store of some silver rows (the model population only)."""
    return silver.where(to_spark(MODEL_POPULATION)).select(*map(to_spark, gold_label_spec()))


@cache
def _label_program() -> Program:
    return Program(gold_label_spec(), where=MODEL_POPULATION)


def update_gold_features(
    silver: TableSnapshot,
    previous: TableSnapshot,
    feature_rules: dict[str, Any],
    full_rebuild: bool,
    driver_max_rows: int,
) -> TableUpdate:
    """The feature store, recomputed for the admission months whose silver partition changed."""
    FeatureGroups.parse(feature_rules)
    rules = _fingerprint(feature_rules)
    changed = previous.state.get("rules") != rules  # new groupings: every month is recomputed
    update = _update(
        silver,
        previous,
        full_rebuild or changed,
        lambda s: build_gold_features(s, feature_rules),
        _program(rules, feature_rules),
        driver_max_rows,
    )
    return replace(update, state={**update.state, "rules": rules})


def update_gold_labels(
    silver: TableSnapshot, previous: TableSnapshot, full_rebuild: bool, driver_max_rows: int
) -> TableUpdate:
    """The label store, recomputed for the admission months whose silver partition changed."""
    return _update(
        silver, previous, full_rebuild, build_gold_labels, _label_program(), driver_max_rows
    )


def _update(
    silver: TableSnapshot,
    previous: TableSnapshot,
    full_rebuild: bool,
    build: Callable[[DataFrame], DataFrame],
    program: Program,
    driver_max_rows: int,
) -> TableUpdate:
    """The stale months rebuilt: by Spark (``build``), or for at most ``driver_max_rows`` silver
    rows on the driver (``program``, the same expressions): a month's few hundred rows cost Spark
    ~2 s of planning and tasks per store (real data, 2 cores), the driver milliseconds."""
    sources = silver.partitions
    full = bool(full_rebuild) or not previous.partitioned or not silver.partitioned
    built = {} if full else previous.state.get("built_from", {})
    stale = sorted(k for k in sources if built.get(k) != sources[k])
    gone = sorted(k for k in built if k not in sources)
    if not full and silver.row_count(stale) <= driver_max_rows:
        rows = _driver_rows(silver.read_pandas(stale, list(program.inputs)), program)
    else:
        rows = build(silver.read(None if full else stale))
        rows = rows.withColumn(PARTITION_KEY, admission_month(F.col("admission_date")))
    return TableUpdate(
        PARTITION_KEY,
        rows,
        tuple(stale + gone),
        {"built_from": dict(sorted(sources.items()))},
        full,
        previous,
    )


def _driver_rows(silver_rows: pd.DataFrame, program: Program) -> pa.Table:
    """The program's rows for these silver rows, with their partition (admission month)."""
    values = program.evaluate(silver_rows, silver_kinds(program.inputs))
    rows = pa.table(values)  # in store order: the program's outputs
    months = np.datetime_as_string(values["admission_date"].astype("datetime64[M]"))
    return rows.append_column(PARTITION_KEY, pa.array(months, pa.string()))


def _count_equal(columns: list[str], *values: str) -> Expr:
    return total((col(c).isin(*values).cast("double") for c in columns), 0.0)


def _category(column: str) -> Expr:
    return coalesce(col(column), lit("Missing")).alias(column)


def _admission_type() -> Expr:
    unknown = ("Not Available", "NULL", "Not Mapped")
    return when(col("admission_type").isin(*unknown), "Missing").otherwise(
        coalesce(col("admission_type"), lit("Missing"))
    )


def _grouped(column: str, groups: dict[str, tuple[int, ...]]) -> Expr:
    result = lit("Other")
    for group, ids in reversed(list(groups.items())):
        result = when(col(column).isin(*ids), group).otherwise(result)
    return result


def _icd9_category(column: str) -> Expr:
    """The three-character ICD-9 category (``428.31`` -> ``428``, ``V57.1`` -> ``V57``).

    Finer than the Strack groups (about 700 categories; the encoder folds the rare ones), and
    still a property of the encounter alone.
    """
    return coalesce(col(column).split_first(r"\."), lit("Missing"))


def _id_code(column: str) -> Expr:
    """An admission/discharge id as a category of its own, finer than the groups above."""
    return coalesce(col(column).cast("string"), lit("Missing"))


def _icd9_group(column: str) -> Expr:
    """Diagnosis groups of Strack et al. (2014), the paper that published this dataset."""
    code = col(column)
    number = icd9_number(code)
    return (
        when(code.isnull(), "Missing")
        .when(code.startswith("250"), "Diabetes")
        .when(number.between(390, 459.99) | floor(number).eq(785), "Circulatory")
        .when(number.between(460, 519.99) | floor(number).eq(786), "Respiratory")
        .when(number.between(520, 579.99) | floor(number).eq(787), "Digestive")
        .when(number.between(800, 999.99), "Injury")
        .when(number.between(710, 739.99), "Musculoskeletal")
        .when(number.between(580, 629.99) | floor(number).eq(788), "Genitourinary")
        .when(number.between(140, 239.99), "Neoplasms")
        .otherwise("Other")
    )
