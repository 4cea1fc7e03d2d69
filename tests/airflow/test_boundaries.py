"""What one Airflow task hands to another must be on disk (or S3), in every env's catalog.

Each Airflow task is a separate `kedro run --nodes/--namespaces ...` process: a MemoryDataset
between two tasks is silently dropped by the first and missing for the second ("Pipeline input(s)
not found"). Tasks are the groups kedro-airflow builds with `--group-by namespace`
(`pipeline.group_nodes_by("namespace")`, as `make dags` runs it).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.framework.session import KedroSession
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline, node
from kedro_airflow.plugin import _get_pipeline_config, _load_config

from .conftest import PROJECT_ROOT

CATALOG_ENVS = ("base", "dev", "prod")
GROUP_BY = "namespace"  # scripts/generate_dags.sh


def crossing_datasets(pipeline: Pipeline) -> dict[str, str]:
    """Datasets a task needs from outside itself: dataset -> where it comes from.

    Outputs of one group read by another group, and the pipeline's own inputs (written by another
    DAG or by hand). Parameters are passed on the command line, not crossing.
    """
    groups = pipeline.group_nodes_by(GROUP_BY)
    group_of = {name: group.name for group in groups for name in group.nodes}
    producer = {dataset: group_of[n.name] for n in pipeline.nodes for dataset in n.outputs}
    crossing: dict[str, str] = {}
    for n in pipeline.nodes:
        for dataset in n.inputs:
            if dataset.startswith("params:") or dataset == "parameters":
                continue
            source = producer.get(dataset)
            if source is None:
                crossing[dataset] = "outside the pipeline"
            elif source != group_of[n.name]:
                crossing[dataset] = f"task {source} -> task {group_of[n.name]}"
    return crossing


def memory_crossings(pipeline: Pipeline, catalog: DataCatalog) -> list[str]:
    problems = []
    for dataset, where in sorted(crossing_datasets(pipeline).items()):
        kind = catalog.get_type(
            dataset
        )  # None: no entry, no pattern -> a MemoryDataset at run time
        if kind is None or kind.rsplit(".", 1)[-1] in {"MemoryDataset", "SharedMemoryDataset"}:
            problems.append(f"{dataset} ({where}) is {kind or 'not in the catalog: MemoryDataset'}")
    return problems


def _context(env: str):
    with KedroSession.create(project_path=PROJECT_ROOT, env=env) as session:
        return session.load_context()


@pytest.mark.parametrize("env", CATALOG_ENVS)
def test_no_memory_dataset_crosses_a_task(kedro_pipelines, env):
    catalog = _context(env).catalog
    problems = {
        name: found
        for name, pipeline in kedro_pipelines.items()
        if (found := memory_crossings(pipeline, catalog))
    }
    assert problems == {}, f"conf/{env}: persist these in the catalog"


def test_the_check_finds_a_memory_hand_over_and_allows_one_inside_a_namespace():
    def step(x):
        return x

    inner = Pipeline(
        [
            node(step, "features", "fitted", name="fit"),
            node(step, "fitted", "score", name="evaluate"),
        ],
        namespace="algo",
        inputs={"features"},
    )
    pipeline = Pipeline([node(step, "raw", "features", name="prepare")]) + inner
    catalog = DataCatalog(datasets={"raw": MemoryDataset(1)})
    problems = memory_crossings(pipeline, catalog)
    assert problems == [
        "features (task prepare -> task algo) is not in the catalog: MemoryDataset",
        "raw (outside the pipeline) is kedro.io.memory_dataset.MemoryDataset",
    ]
    assert "algo.fitted" not in crossing_datasets(pipeline)  # stays inside the algo task


# Signal -> the pipeline whose Kedro nodes write it (its DAG's gate reads it after the run).
SIGNAL_WRITERS = {"new_data": "data_processing", "retrain": "monitoring"}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_gates_read_where_the_pipelines_write(kedro_pipelines, env):
    """airflow.yml's signal locations are the filepaths the producing pipeline's catalog writes."""
    context = _context(env)
    signals = _get_pipeline_config(_load_config(context), {}, "default")["signals"]
    if env == "prod":
        assert all(location.startswith("s3://") for location in signals.values()), signals
    checked = 0
    for signal, writer in SIGNAL_WRITERS.items():
        if writer not in kedro_pipelines:
            continue
        location = signals[signal]
        expected = location if "://" in location else str(PROJECT_ROOT / location)
        written = {
            dataset: context.catalog.config_resolver.resolve_pattern(dataset).get("filepath")
            for dataset in kedro_pipelines[writer].all_outputs()
        }
        writers = [dataset for dataset, path in written.items() if _same(path, expected)]
        assert writers, f"conf/{env}: no output of {writer} is written to {location}: {written}"
        checked += 1
    assert checked, "no signal-writing pipeline is registered"


def _same(path, expected: str) -> bool:
    if path is None:
        return False
    path = str(path)
    if "://" in expected or "://" in path:
        return path == expected
    return Path(path).resolve() == Path(expected).resolve()
