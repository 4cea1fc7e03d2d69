"""Wiring of the medallion; each node becomes one task of the ``diab_medallion_ecs`` DAG."""

from kedro.pipeline import Pipeline, node

from .bronze import ingest_extracts
from .gold import update_gold_features, update_gold_labels
from .silver import update_silver
from .trigger import decide_training_trigger


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                ingest_extracts,
                [
                    "landing_extracts",
                    "landing_hashes",
                    "bronze_inventory",
                    "landing_source",
                    "params:run_date",
                ],
                ["bronze_extracts@pandas", "bronze_ingestion_summary"],
                name="ingest_bronze",
            ),
            # Incremental: each table node also reads the version it is about to update (a
            # snapshot of the same folder under another name, so Kedro sees no cycle).
            node(
                update_silver,
                [
                    "bronze_extracts@spark",
                    "bronze_ingestion_summary",
                    "silver_encounters_previous",
                    "id_mapping",
                    "params:run_date",
                    "params:data_quality",
                    "params:full_rebuild",
                ],
                ["silver_quarantine@spark", "silver_encounters@spark", "data_quality_report"],
                name="build_silver",
            ),
            node(
                update_gold_features,
                [
                    "silver_encounters@snapshot",
                    "gold_features_previous",
                    "params:features",
                    "params:full_rebuild",
                ],
                "gold_features@spark",
                name="build_gold_features",
            ),
            node(
                update_gold_labels,
                ["silver_encounters@snapshot", "gold_labels_previous", "params:full_rebuild"],
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
