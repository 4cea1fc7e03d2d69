"""Wiring of the medallion; each node becomes one task of the ``diab_medallion_ecs`` DAG."""

from kedro.pipeline import Pipeline, node

from .bronze import ingest_extracts
from .gold import build_gold_features, build_gold_labels
from .silver import build_silver
from .trigger import decide_training_trigger


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                ingest_extracts,
                ["landing_extracts", "bronze_inventory", "landing_source", "params:run_date"],
                ["bronze_extracts@pandas", "bronze_ingestion_summary"],
                name="ingest_bronze",
            ),
            node(
                build_silver,
                ["bronze_extracts@spark", "id_mapping", "params:run_date", "params:data_quality"],
                ["silver_encounters@spark", "silver_quarantine@spark", "data_quality_report"],
                name="build_silver",
            ),
            node(
                build_gold_features,
                ["silver_encounters@spark", "params:features"],
                "gold_features@spark",
                name="build_gold_features",
            ),
            node(
                build_gold_labels,
                "silver_encounters@spark",
                "gold_labels@spark",
                name="build_gold_labels",
            ),
            node(
                decide_training_trigger,
                ["bronze_ingestion_summary", "data_quality_report", "params:training_trigger"],
                "new_data_signal",
                name="decide_training_trigger",
            ),
        ]
    )
