"""Wiring of the medallion; each node becomes one task of the ``diab_medallion_ecs`` DAG."""

from kedro.pipeline import Pipeline, node

from .nodes import (
    build_gold_features,
    build_gold_labels,
    build_silver,
    decide_training_trigger,
    ingest_extracts,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                func=ingest_extracts,
                inputs=[
                    "landing_extracts",
                    "bronze_inventory",
                    "landing_source",
                    "params:run_date",
                ],
                outputs=["bronze_extracts@pandas", "bronze_ingestion_summary"],
                name="ingest_bronze",
            ),
            node(
                func=build_silver,
                inputs=[
                    "bronze_extracts@spark",
                    "id_mapping",
                    "params:run_date",
                    "params:data_quality",
                ],
                outputs=[
                    "silver_encounters@spark",
                    "silver_quarantine@spark",
                    "data_quality_report",
                ],
                name="build_silver",
            ),
            node(
                func=build_gold_features,
                inputs=["silver_encounters@spark", "params:features"],
                outputs="gold_features@spark",
                name="build_gold_features",
            ),
            node(
                func=build_gold_labels,
                inputs="silver_encounters@spark",
                outputs="gold_labels@spark",
                name="build_gold_labels",
            ),
            node(
                func=decide_training_trigger,
                inputs=[
                    "bronze_ingestion_summary",
                    "data_quality_report",
                    "params:training_trigger",
                ],
                outputs="new_data_signal",
                name="decide_training_trigger",
            ),
        ]
    )
