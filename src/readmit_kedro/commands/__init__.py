"""The ``readmit`` command: project operations that are not Kedro runs.

(Not named ``cli.py``: Kedro would load that module as the project's own ``kedro`` commands and
our ``registry`` group would shadow ``kedro registry``.)

``cli`` is the top-level group; more subcommands are added with ``cli.add_command(...)``. Paths
default to the project layout relative to the working directory (run it from the project root).
User errors end in one line (``click.ClickException``), never a traceback. numpy and pandas are
imported inside the commands, so ``readmit --help`` stays instant.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from readmit_kedro.commands.registry import registry
from readmit_kedro.landing import DEFAULT_LANDING_ROOT, DEFAULT_RAW_DIR, ENV_VAR, RAW_FILENAME

__all__ = ["cli"]

REPLAY_LOG = "logs/replay.log"  # git-ignored, like every log


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages too.")
def cli(verbose: bool) -> None:
    """readmit-kedro: 30-day readmission of diabetic inpatients."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@cli.group()
def data() -> None:
    """The raw layer and the landing zone."""


@data.command("acquire")
@click.option(
    "--source",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"The UCI file (.csv, .csv.gz or the UCI .zip). Default: ${ENV_VAR}, else a download.",
)
@click.option(
    "--synthetic-rows",
    type=click.IntRange(min=1),
    help="Generate this many synthetic rows instead of using real data.",
)
@click.option(
    "--seed",
    type=int,
    help="Seed of the synthetic data (forced, or the fallback when no real data is found) "
    "[default: 42].",
)
@click.option(
    "--raw-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_RAW_DIR,
    show_default=True,
)
@click.option("--url", hidden=True, help="Where to download the UCI archive (tests).")
def acquire_command(
    source: Path | None,
    synthetic_rows: int | None,
    seed: int | None,
    raw_dir: Path,
    url: str | None,
) -> None:
    """Put the verified UCI file (or synthetic data) into the raw layer, with its sidecar."""
    from readmit_kedro.landing.acquire import AcquisitionError, acquire

    try:
        result = acquire(raw_dir, source, synthetic_rows=synthetic_rows, seed=seed, url=url)
    except AcquisitionError as exc:
        raise click.ClickException(str(exc)) from exc
    sidecar = result.sidecar
    state = "stored" if result.changed else "already present"
    click.echo(
        f"{result.path}: {sidecar['data_source']} data, {sidecar['rows']:,} rows ({state}; "
        f"origin {sidecar['origin']})"
    )


@data.command("land")
@click.option(
    "--until",
    metavar="YYYY-MM",
    help="Land the months up to and including this one (default: the whole history).",
)
@click.option(
    "--landing-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_LANDING_ROOT,
    show_default=True,
)
@click.option(
    "--raw-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_RAW_DIR,
    show_default=True,
)
def land_command(until: str | None, landing_root: Path, raw_dir: Path) -> None:
    """Write the monthly extracts still missing from the landing zone (existing ones are kept)."""
    from readmit_kedro.landing.monthly import LandingError, land

    try:
        result = land(raw_dir / RAW_FILENAME, landing_root, until)
    except LandingError as exc:
        raise click.ClickException(str(exc)) from exc
    span = f"{result.written[0]}..{result.written[-1]}" if result.written else "none"
    empty = f"; {len(result.empty)} without encounters (no file)" if result.empty else ""
    click.echo(
        f"{result.landing_root}: landed {len(result.written)} month(s) ({span}, "
        f"{result.rows_written:,} rows); {len(result.skipped)} already there{empty}; "
        f"data_source {result.source.get('data_source')}"
    )


@cli.command("replay")
@click.option("--env", default=None, help="Kedro env (default: the embedded default, conf/base).")
@click.option(
    "--source",
    type=click.Path(dir_okay=False, path_type=Path),
    help=f"The UCI file. Default: ${ENV_VAR}, else the UCI download, else synthetic data.",
)
@click.option("--synthetic-rows", type=click.IntRange(min=1), help="Replay synthetic data.")
@click.option("--history-until", default="2007-12", show_default=True, metavar="YYYY-MM")
@click.option("--last-month", default="2008-12", show_default=True, metavar="YYYY-MM")
@click.option(
    "--drift-from",
    metavar="YYYY-MM",
    help="Inject a realistic drift (ICD-10 primary diagnoses, longer stays) from this month.",
)
@click.option(
    "--verbose",
    "log_to_console",
    is_flag=True,
    help=f"Every log record on the console (Kedro's per-dataset lines too), not in {REPLAY_LOG}.",
)
def replay_command(
    env: str | None,
    source: Path | None,
    synthetic_rows: int | None,
    history_until: str,
    last_month: str,
    drift_from: str | None,
    log_to_console: bool,
) -> None:
    """Run the whole lifecycle: history, first training, then a year of monthly operation."""
    import time

    from readmit_kedro.commands.console import StepProgress, quiet_logging
    from readmit_kedro.commands.replay import describe, replay

    console_logger = "readmit_kedro.commands.replay"
    if not log_to_console:
        quiet_logging(Path.cwd() / REPLAY_LOG, console_logger=console_logger)
        click.echo(f"Logs of every pipeline run: {REPLAY_LOG} (--verbose to print them here)")
    started = time.perf_counter()
    with StepProgress(console_logger) as progress:
        summary = replay(
            Path.cwd(),
            env=env,
            source=str(source) if source else None,
            synthetic_rows=synthetic_rows,
            history_until=history_until,
            last_month=last_month,
            drift_from=drift_from,
            on_step=progress.update,
        )
    click.echo(describe(summary, Path.cwd(), env))
    click.echo(f"Replay wall time: {time.perf_counter() - started:.0f} s")


@cli.command("serve")
@click.option("--env", default=None, help="Kedro env (default: the embedded default, conf/base).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, type=click.IntRange(1, 65535), show_default=True)
@click.option(
    "--workers",
    default=1,
    type=click.IntRange(1, 64),
    show_default=True,
    help="uvicorn worker processes, each with its own model (about one per core).",
)
@click.option(
    "--pin",
    nargs=2,
    metavar="ALGORITHM VERSION",
    help="Serve this registered version instead of the champion (never reloaded).",
)
def serve_command(
    env: str | None, host: str, port: int, workers: int, pin: tuple[str, str] | None
) -> None:
    """Score encounters over HTTP: the champion, the batch path's silver and gold rules.

    Requests need the X-API-Key header; the key is read from $READMIT_API_KEY. Unless pinned,
    a newly promoted champion is loaded and swapped in while serving.
    """
    import uvicorn

    from readmit_kedro.serving.app import API_KEY_ENV, SERVE_ENV, SERVE_PIN

    if not os.environ.get(API_KEY_ENV, ""):
        raise click.ClickException(f"set {API_KEY_ENV}: requests must carry it as X-API-Key")
    os.environ[SERVE_ENV] = env or ""  # the workers build the app from the environment
    os.environ[SERVE_PIN] = " ".join(pin or ())
    uvicorn.run(
        "readmit_kedro.serving.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


cli.add_command(registry)
