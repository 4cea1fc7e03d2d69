"""Wiring of the ``diab_model_training`` DAG; node names become Airflow task ids.

Shape (kedro-viz demo-project "modelling"): prerequisite checks and preprocessing run once, then
one template pipeline is instantiated per algorithm under its own namespace (``xgboost.train_model``
…), so the three trainings are independent parallel tasks; champion selection waits for all.
"""

from kedro.pipeline import Pipeline, node

from .champion import build_champion_reference, score_current_champion, select_champion
from .checks import check_training_data
from .config import validate_training_config
from .evaluation import evaluate_model, package_model
from .modeling import ESTIMATORS, train_model
from .preprocessing import preprocess_training_data

# {partition: loader}: past the train task's memory, training reads gold a partition at a time
GOLD = ["gold_features@partitions", "gold_labels@partitions"]


def _algorithm_template() -> Pipeline:
    """Train → calibrate and evaluate → register one algorithm; ``params:algorithm`` is set per namespace."""
    return Pipeline(
        [
            node(
                func=train_model,
                inputs=[
                    "preprocessed_training_data",
                    "params:algorithm",
                    "params:model_config",
                    "params:training_config",
                ],
                outputs=["estimator", "search_report"],
                name="train_model",
            ),
            node(
                func=evaluate_model,
                inputs=["estimator", "preprocessed_training_data", "params:training_config"],
                outputs=["evaluation", "calibrator"],
                name="evaluate_model",
            ),
            node(
                func=package_model,
                inputs=[
                    "estimator",
                    "calibrator",
                    "preprocessed_training_data",
                    "evaluation",
                    "search_report",
                    "params:algorithm",
                ],
                outputs="registered_model",
                name="register_model",
            ),
        ]
    )


def create_pipeline(**kwargs) -> Pipeline:
    shared = Pipeline(
        [
            node(
                func=validate_training_config,
                inputs={
                    "run_date": "params:run_date",
                    "temporal_splits": "params:temporal_splits",
                    "model_config": "params:model_config",
                    "training_config": "params:training_config",
                    **{name: f"params:{name}" for name in ESTIMATORS},
                },
                outputs="training_plan",
                name="validate_training_config",
            ),
            node(
                func=check_training_data,
                inputs=[
                    "gold_features@window",
                    "gold_labels@window",
                    "gold_features@fingerprints",
                    "gold_labels@fingerprints",
                    "training_plan",
                    "params:training_config",
                    "latest_registered_models",
                    "current_champion_provenance",
                ],
                outputs="training_data_check",
                name="check_training_data",
            ),
            node(
                func=preprocess_training_data,
                inputs=[
                    *GOLD,
                    "training_plan",
                    "training_data_check",
                    "params:training_config",
                    "params:model_config",
                ],
                outputs="preprocessed_training_data",
                name="preprocess_training_data",
            ),
            node(
                func=score_current_champion,
                inputs=[
                    "current_champion",
                    *GOLD,
                    "preprocessed_training_data",
                    "training_plan",
                    "training_data_check",
                    "params:training_config",
                ],
                outputs="current_champion_scores",
                name="score_current_champion",
            ),
            node(
                func=select_champion,
                inputs={
                    "training_plan": "training_plan",
                    "current_champion_scores": "current_champion_scores",
                    "training_config": "params:training_config",
                    **{name: f"{name}.registered_model" for name in ESTIMATORS},
                },
                outputs=["champion_decision", "champion_report"],
                name="select_champion",
            ),
            node(
                func=build_champion_reference,
                inputs=[
                    "champion_decision",
                    *GOLD,
                    "training_plan",
                    "training_data_check",
                    "params:training_config",
                    "params:reference_profile_config",
                ],
                outputs="reference_profile",
                name="build_champion_reference",
            ),
        ]
    )
    per_algorithm = [
        Pipeline(
            _algorithm_template(),
            namespace=name,
            inputs={"preprocessed_training_data"},
            parameters={
                "params:algorithm": f"params:{name}",
                "params:model_config": "params:model_config",
                "params:training_config": "params:training_config",
            },
        )
        for name in ESTIMATORS
    ]
    return Pipeline([shared, *per_algorithm])
