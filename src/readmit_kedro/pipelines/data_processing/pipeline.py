"""Wiring of the medallion; each node becomes one task of the ``diab_medallion_ecs`` DAG."""

from kedro.pipeline import Pipeline, node

from readmit_kedro.pipelines.training.modeling import ESTIMATORS

from .bronze import ingest_extracts
from .gold import update_gold_features, update_gold_labels
from .silver import update_silver
from .trigger import decide_training_trigger

# The training DAG's parameters: the signal holds training's own data check for this run_date.
TRAINING_PARAMS = {
    "run_date": "params:run_date",
    "temporal_splits": "params:temporal_splits",
    "model_config": "params:model_config",
    "training_config": "params:training_config",
    **{name: f"params:{name}" for name in ESTIMATORS},
}


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
                    "bronze_extracts@pandas",
                    "bronze_ingestion_summary",
                    "silver_encounters_previous",
                    "id_mapping",
                    "params:run_date",
                    "params:data_quality",
                    "params:full_rebuild",
                    "params:driver_max_rows",
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
                    "params:driver_max_rows",
                ],
                "gold_features@spark",
                name="build_gold_features",
            ),
            node(
                update_gold_labels,
                [
                    "silver_encounters@snapshot",
                    "gold_labels_previous",
                    "params:full_rebuild",
                    "params:driver_max_rows",
                ],
                "gold_labels@spark",
                name="build_gold_labels",
            ),
            node(
                decide_training_trigger,
                {
                    "ingestion": "bronze_ingestion_summary",
                    "quality": "data_quality_report",
                    "trigger": "params:training_trigger",
                    "gold_features": "gold_features@window",
                    "gold_labels": "gold_labels@window",
                    "features_fingerprints": "gold_features@fingerprints",
                    "labels_fingerprints": "gold_labels@fingerprints",
                    "counted": "trigger_window_counts_previous",
                    **TRAINING_PARAMS,
                },
                ["new_data_signal", "trigger_window_counts"],
                name="decide_training_trigger",
            ),
        ]
    )
