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

from dataclasses import dataclass, replace
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from readmit_kedro.io.published import TableSnapshot, TableUpdate
from readmit_kedro.pipelines.data_processing.comorbidity import comorbidity_features
from readmit_kedro.pipelines.data_processing.silver import (
    ID_COLUMNS,
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


def build_gold_features(silver: DataFrame, feature_rules: dict[str, Any]) -> DataFrame:
    """One row per encounter of the model population, with features known at discharge.

    Every feature comes from the encounter's own row. History is the source's own prior-year
    visit counts (``number_inpatient`` …), never counted across rows: the stand-in admission
    dates follow encounter_id, which stops being time order in mid-2007 (see the ordering checks
    of the quality report), so "earlier encounters of the patient" would count later ones there.
    """
    groups = FeatureGroups.parse(feature_rules)
    drugs = [snake_case(d) for d in DRUG_COLUMNS]
    visits = ("number_outpatient", "number_emergency", "number_inpatient")
    features = silver.where(~F.col("excluded_from_model")).select(
        F.col("encounter_id"),
        F.col("patient_nbr"),
        F.col("admission_date"),
        F.year("admission_date").alias("admission_year"),
        (F.regexp_extract("age", r"\[(\d+)-", 1).cast("double") + 5).alias("age_years"),
        *[F.col(c).cast("double").alias(c) for c in NUMERIC_FEATURES[1:9]],
        sum((F.col(c) for c in visits), F.lit(0)).cast("double").alias("prior_year_visits"),
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
        F.when(F.col("change") == "Ch", "Yes").otherwise("No").alias("med_change"),
        _category("diabetes_med"),
        *[_icd9_category(f"diag_{i}").alias(f"diag_{i}_code") for i in (1, 2, 3)],
        *[_id_code(c).alias(c.replace("_id", "_code")) for c in ID_COLUMNS],
        *comorbidity_features(),
        # how a stay ended matters differently by its primary diagnosis
        F.concat_ws("|", _id_code("discharge_disposition_id"), _icd9_group("diag_1")).alias(
            "discharge_x_dx1"
        ),
        F.col("_data_source").alias("data_source"),
    )
    return features.select(*GOLD_FEATURE_STORE_COLUMNS)


def build_gold_labels(silver: DataFrame) -> DataFrame:
    """The label store: 30-day readmission (the target) and any readmission, per encounter."""
    return (
        silver.where(~F.col("excluded_from_model"))
        .select(
            "encounter_id",
            "patient_nbr",
            "admission_date",
            F.year("admission_date").alias("admission_year"),
            (F.col("readmitted") == "<30").cast("int").alias("readmitted_30d"),
            (F.col("readmitted") != "NO").cast("int").alias("readmitted_any"),
        )
        .select(*GOLD_LABEL_STORE_COLUMNS)
    )


def update_gold_features(
    silver: TableSnapshot,
    previous: TableSnapshot,
    feature_rules: dict[str, Any],
    full_rebuild: bool,
) -> TableUpdate:
    """The feature store, recomputed for the admission months whose silver partition changed."""
    FeatureGroups.parse(feature_rules)
    rules = _fingerprint(feature_rules)
    changed = previous.state.get("rules") != rules  # new groupings: every month is recomputed
    update = _update(
        silver, previous, full_rebuild or changed, lambda s: build_gold_features(s, feature_rules)
    )
    return replace(update, state={**update.state, "rules": rules})


def update_gold_labels(
    silver: TableSnapshot, previous: TableSnapshot, full_rebuild: bool
) -> TableUpdate:
    """The label store, recomputed for the admission months whose silver partition changed."""
    return _update(silver, previous, full_rebuild, build_gold_labels)


def _update(
    silver: TableSnapshot, previous: TableSnapshot, full_rebuild: bool, build
) -> TableUpdate:
    sources = silver.partitions
    full = bool(full_rebuild) or not previous.partitioned or not silver.partitioned
    built = {} if full else previous.state.get("built_from", {})
    stale = sorted(k for k in sources if built.get(k) != sources[k])
    gone = sorted(k for k in built if k not in sources)
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


def _count_equal(columns: list[str], *values: str) -> Column:
    total = F.lit(0.0)
    for column in columns:
        total = total + F.col(column).isin(*values).cast("double")
    return total


def _category(column: str) -> Column:
    return F.coalesce(F.col(column), F.lit("Missing")).alias(column)


def _admission_type() -> Column:
    unknown = ("Not Available", "NULL", "Not Mapped")
    return F.when(F.col("admission_type").isin(*unknown), "Missing").otherwise(
        F.coalesce(F.col("admission_type"), F.lit("Missing"))
    )


def _grouped(column: str, groups: dict[str, tuple[int, ...]]) -> Column:
    result = F.lit("Other")
    for group, ids in reversed(list(groups.items())):
        result = F.when(F.col(column).isin(*ids), group).otherwise(result)
    return result


def _icd9_category(column: str) -> Column:
    """The three-character ICD-9 category (``428.31`` -> ``428``, ``V57.1`` -> ``V57``).

    Finer than the Strack groups (about 700 categories; the encoder folds the rare ones), and
    still a property of the encounter alone.
    """
    return F.coalesce(F.split(F.col(column), r"\.").getItem(0), F.lit("Missing"))


def _id_code(column: str) -> Column:
    """An admission/discharge id as a category of its own, finer than the groups above."""
    return F.coalesce(F.col(column).cast("string"), F.lit("Missing"))


def _icd9_group(column: str) -> Column:
    """Diagnosis groups of Strack et al. (2014), the paper that published this dataset."""
    code = F.col(column)
    number = F.when(code.rlike(r"^[0-9]"), code.cast("double"))
    return (
        F.when(code.isNull(), "Missing")
        .when(code.startswith("250"), "Diabetes")
        .when(number.between(390, 459.99) | (F.floor(number) == 785), "Circulatory")
        .when(number.between(460, 519.99) | (F.floor(number) == 786), "Respiratory")
        .when(number.between(520, 579.99) | (F.floor(number) == 787), "Digestive")
        .when(number.between(800, 999.99), "Injury")
        .when(number.between(710, 739.99), "Musculoskeletal")
        .when(number.between(580, 629.99) | (F.floor(number) == 788), "Genitourinary")
        .when(number.between(140, 239.99), "Neoplasms")
        .otherwise("Other")
    )
