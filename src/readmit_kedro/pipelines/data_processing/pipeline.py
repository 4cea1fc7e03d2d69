"""Wiring of the medallion; each node becomes one task of the ``diab_medallion_ecs`` DAG."""

from kedro.pipeline import Pipeline, node

from readmit_kedro.pipelines.training.modeling import ESTIMATORS

from .bronze import ingest_extracts
from .gold import build_gold_features, build_gold_labels
from .silver import build_silver
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
                {
                    "ingestion": "bronze_ingestion_summary",
                    "quality": "data_quality_report",
                    "trigger": "params:training_trigger",
                    "gold_features": "gold_features@pandas",
                    "gold_labels": "gold_labels@pandas",
                    **TRAINING_PARAMS,
                },
                "new_data_signal",
                name="decide_training_trigger",
            ),
        ]
    )
