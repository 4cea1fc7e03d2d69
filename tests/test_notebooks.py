"""The notebooks in notebooks/: committed clean, and still running against the pipelines' outputs.

The e2e test builds one small world for the module - a project copy, 3,000 synthetic encounters
acquired and landed, then ``data_processing``, ``training``, ``inference`` and ``monitoring`` run in
env ``dev`` - and executes each notebook in it headless with nbclient, the way a data scientist
opens it (kernel started in ``<project>/notebooks``, ``KEDRO_ENV=dev``, the notebook's own
``%load_ext kedro.ipython`` / ``%reload_kedro``). A pipeline that fails fails only the notebooks
that need it, with that pipeline's error.
"""

from __future__ import annotations

import os
import shutil
import traceback
from pathlib import Path

import nbformat
import pytest

from readmit_kedro.landing.acquire import acquire
from readmit_kedro.landing.monthly import land

from .conftest import PROJECT_ROOT, copy_project

NOTEBOOKS = PROJECT_ROOT / "notebooks"
PIPELINES = ("data_processing", "training", "inference", "monitoring")
# notebook -> the pipelines whose outputs it reads
NEEDS = {
    "01_gold_exploration.ipynb": ("data_processing",),
    "02_model_evaluation.ipynb": ("data_processing", "training"),
    "03_monitoring_report.ipynb": PIPELINES,
}
SYNTHETIC_ROWS = 3_000
# 3,000 encounters over ten years leave ~75 in monitoring's 90-day window, below the 100 the
# design asks for; lower the bar in this copy so the report has metrics and drift to show.
MONITORING_OVERRIDE = "monitoring_config:\n  min_samples_for_metrics: 30\n"


def _notebook_paths() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def test_the_expected_notebooks_are_committed() -> None:
    assert {p.name for p in _notebook_paths()} == set(NEEDS)


@pytest.mark.parametrize("path", _notebook_paths(), ids=lambda p: p.name)
def test_committed_notebook_is_stripped_and_uses_the_catalog(path: Path) -> None:
    book = nbformat.read(path, as_version=4)
    nbformat.validate(book)
    code = [cell for cell in book.cells if cell.cell_type == "code"]
    dirty = [i for i, cell in enumerate(code) if cell.outputs or cell.execution_count is not None]
    assert not dirty, (
        f"{path.name}: code cells {dirty} have outputs or execution counts; "
        "run `.venv/bin/python scripts/strip_notebooks.py` before committing"
    )
    assert set(book.metadata) <= {"kernelspec", "language_info"}, "strip the notebook metadata"
    source = "\n".join(cell.source for cell in code)
    assert "%load_ext kedro.ipython" in code[0].source and "%reload_kedro" in code[0].source
    assert "catalog.load(" in source
    for fragment in ("data/0", "s3://", "/work/", "/home/", "read_parquet(", "read_csv("):
        assert fragment not in source, f"{path.name}: read data through the catalog ({fragment!r})"


# --------------------------------------------------------------------------------------------------


def _run(project: Path, pipeline: str, env: str) -> None:
    """As the ``run_pipeline`` fixture (function-scoped, so not usable in a module fixture)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        session.run(pipeline_names=[pipeline])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, spark) -> tuple[Path, dict[str, str]]:
    """A project copy with every pipeline run on synthetic data; returns it and the failures."""
    project = copy_project(tmp_path_factory.mktemp("notebooks_world"))
    (project / "conf" / "dev" / "parameters_monitoring_notebooks.yml").write_text(
        MONITORING_OVERRIDE
    )
    raw = acquire(project / "data" / "01_raw", synthetic_rows=SYNTHETIC_ROWS)
    land(raw.path, project / "data" / "01_raw" / "landing")
    failures: dict[str, str] = {}
    cwd = Path.cwd()
    os.chdir(project)  # the registry datasets' `root` is relative to the working directory
    try:
        for pipeline in PIPELINES:
            if failures:
                failures[pipeline] = f"not run: {next(iter(failures))} failed first"
                continue
            try:
                _run(project, pipeline, env="dev")
            except Exception:
                failures[pipeline] = traceback.format_exc(limit=-8)
    finally:
        os.chdir(cwd)
    return project, failures


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(NEEDS))
def test_notebook_runs_against_the_pipelines_outputs(
    name: str, world: tuple[Path, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    project, failures = world
    broken = {p: failures[p] for p in NEEDS[name] if p in failures}
    if broken:
        pytest.fail(
            f"{name} needs {', '.join(NEEDS[name])}, but in the synthetic world:\n"
            + "\n".join(f"--- {p}:\n{error}" for p, error in broken.items()),
            pytrace=False,
        )
    folder = project / "notebooks"
    folder.mkdir(exist_ok=True)
    shutil.copy(NOTEBOOKS / name, folder / name)
    book = nbformat.read(folder / name, as_version=4)

    # The kernel inherits this environment: env dev, as `kedro jupyter notebook --env dev` sets it.
    monkeypatch.setenv("KEDRO_ENV", "dev")
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    client = NotebookClient(
        book,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},  # cwd: <project>/notebooks
    )
    try:
        client.execute()
    except CellExecutionError as exc:
        pytest.fail(f"{name} failed in {folder}:\n{exc}", pytrace=False)
    finally:
        nbformat.write(book, folder / f"executed_{name}")  # kept in the tmp dir for debugging

    outputs = [o for cell in book.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 3, f"{name} drew {len(figures)} figures"
