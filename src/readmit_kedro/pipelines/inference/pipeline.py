"""Wiring of the ``diab_model_inference`` DAG; each node becomes one Airflow task (design tasks 1-4).

The prediction store is read as ``inference_prediction_store`` and written as
``inference_prediction_store_updated``: two catalog entries on the same file, so the pipeline
stays acyclic while ``publish_predictions`` updates the store it read.
"""

from kedro.pipeline import Pipeline, node

from .nodes import find_new_encounters, publish_predictions, resolve_model, score_encounters


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                func=resolve_model,
                inputs=["inference_serving_model", "params:inference_config"],
                outputs="inference_model",
                name="check_model_exists",
            ),
            node(
                func=find_new_encounters,
                inputs=[
                    "gold_features@pandas",
                    "inference_prediction_store",
                    "inference_model",
                    "params:run_date",
                ],
                outputs=["inference_new_encounters", "inference_work_signal"],
                name="find_new_encounters",
            ),
            node(
                func=score_encounters,
                inputs=[
                    "inference_new_encounters",
                    "inference_serving_model",
                    "inference_model",
                    "params:inference_config",
                    "params:run_date",
                ],
                outputs=["dated_predictions", "inference_run_summary"],
                name="score_encounters",
            ),
            node(
                func=publish_predictions,
                inputs=["dated_predictions", "inference_prediction_store", "params:run_date"],
                outputs=["inference_prediction_store_updated", "inference_signal"],
                name="publish_predictions",
            ),
        ]
    )
