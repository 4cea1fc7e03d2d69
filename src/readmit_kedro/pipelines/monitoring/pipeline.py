"""Wiring of the monitoring run; each node becomes one task of the ``diab_model_monitoring`` DAG."""

from kedro.pipeline import Pipeline, node

from .nodes import (
    assemble_report,
    build_alerts,
    compute_data_drift,
    compute_feature_importance,
    compute_performance,
    decide_retraining,
    render_report,
    route_alerts,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                func=compute_performance,
                inputs=[
                    "prediction_store",
                    "gold_labels@pandas",
                    "gold_features@pandas",  # the stay: maturity counts from discharge
                    "reference_profile",
                    "params:run_date",
                    "params:monitoring_config",
                ],
                outputs="monitoring_performance",
                name="compute_performance",
            ),
            node(
                func=compute_data_drift,
                inputs=[
                    "prediction_store",
                    "gold_features@pandas",
                    "reference_profile",
                    "params:run_date",
                    "params:monitoring_config",
                ],
                outputs="monitoring_data_drift",
                name="compute_data_drift",
            ),
            node(
                func=compute_feature_importance,
                inputs=[
                    "prediction_store",
                    "gold_features@pandas",
                    "inference_serving_model",  # the model inference and `readmit serve` use
                    "reference_profile",
                    "params:run_date",
                    "params:monitoring_config",
                ],
                outputs="monitoring_feature_importance",
                name="compute_feature_importance",
            ),
            node(
                func=decide_retraining,
                inputs=[
                    "monitoring_performance",
                    "monitoring_data_drift",
                    "reference_profile",
                    "params:run_date",
                    "params:monitoring_config",
                ],
                outputs="retrain_signal",
                name="decide_retraining",
            ),
            node(
                func=build_alerts,
                inputs=[
                    "monitoring_performance",
                    "monitoring_data_drift",
                    "retrain_signal",
                    "params:monitoring_config",
                    "data_quality_report",
                    "monitoring_feature_importance",
                ],
                outputs="monitoring_alerts",
                name="build_alerts",
            ),
            node(
                func=assemble_report,
                inputs=[
                    "monitoring_performance",
                    "monitoring_data_drift",
                    "retrain_signal",
                    "monitoring_alerts",
                    "params:monitoring_config",
                    "data_quality_report",
                    "monitoring_feature_importance",
                ],
                outputs=["monitoring_report", "monitoring_report_archive"],
                name="assemble_report",
            ),
            node(
                func=render_report,
                inputs="monitoring_report",
                outputs=[
                    "monitoring_html_report",
                    "monitoring_psi_plot",
                    "monitoring_score_distribution_plot",
                    "monitoring_roc_plot",
                    "monitoring_calibration_plot",
                ],
                name="render_report",
            ),
            node(
                func=route_alerts,
                inputs=["monitoring_alerts", "params:alerting"],
                # Saving sends: the dataset holds the channels' credentials (readmit_alerts).
                outputs="monitoring_alert_delivery_log",
                name="deliver_alerts",  # the Airflow task id
            ),
        ]
    )
