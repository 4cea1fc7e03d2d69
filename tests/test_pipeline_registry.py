"""`kedro run` with no --pipelines must not score with a champion it has not trained yet."""

from __future__ import annotations

from kedro.framework.startup import bootstrap_project

from readmit_kedro.pipeline_registry import register_pipelines

from .conftest import PROJECT_ROOT


def test_default_pipeline_builds_gold_and_trains_but_does_not_score():
    bootstrap_project(PROJECT_ROOT)
    pipelines = register_pipelines()
    default = {node.name for node in pipelines["__default__"].nodes}
    assert default == {
        node.name for name in ("data_processing", "training") for node in pipelines[name].nodes
    }
    assert not default & {node.name for node in pipelines["inference"].nodes}


def test_a_run_of_one_pipeline_loads_only_that_one(monkeypatch):
    """`kedro run --pipelines inference` asks Kedro for that pipeline alone."""
    from kedro.framework.project import pipelines

    bootstrap_project(PROJECT_ROOT)
    monkeypatch.setattr(pipelines, "_requested_pipelines", ["inference"])
    assert set(register_pipelines()) == {"inference"}
