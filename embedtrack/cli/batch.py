"""`embedtrack batch`: segment and track many CTC sequences on a Dask cluster (local or running)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from ctc.wording import counted
from embedtrack.cli._common import device_option, handle_errors, overwrite_option


@click.command("batch")
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--datasets", default="all", show_default=True,
              help="Comma-separated dataset folders under ROOT, or all (those with a model).")
@click.option("--sequences", default="all", show_default=True, help="Comma-separated sequences, e.g. 01,02.")
@click.option("--model-dir", type=click.Path(path_type=Path), default=None,
              help="Folder of model folders named by dataset (MODEL_DIR/<DATASET>), used before bundled models.")
@click.option("--model", default=None, help="One model (bundled name or folder) for every dataset.")
@click.option("--scheduler", default=None,
              help="Address of a running Dask scheduler (tcp://host:8786) [default: a local cluster].")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Local cluster: worker processes [default: usable cores / threads per worker].")
@click.option("--threads-per-worker", "threads", type=click.IntRange(min=1), default=None,
              help="Local cluster: torch threads per worker, each worker runs one sequence at a time [default: 1].")
@device_option
@overwrite_option
@click.option("--report", type=click.Path(path_type=Path), default=None, help="Write the table as JSON here.")
@click.option("--evaluate", is_flag=True, help="Score SEG/TRA/DET where <SEQ>_GT exists.")
@handle_errors
def command(root: Path, datasets: str, sequences: str, model_dir: Path | None, model: str | None,
            scheduler: str | None, workers: int | None, threads: int | None, device: str, overwrite: bool,
            report: Path | None, evaluate: bool) -> None:
    """Run every ROOT/<DATASET>/<SEQ> (two-digit sequence folders) that has a model into <SEQ>_RES.

    The model of a dataset is --model, else --model-dir/<DATASET>, else the bundled model of that name. Each
    sequence runs as `embedtrack run` would; an existing valid result is skipped (--overwrite redoes it), so an
    interrupted batch is finished by running it again. Exit code 1 when a sequence failed.
    """
    from embedtrack.io import batch

    batch.require_dask()
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:  # the cluster's own INFO lines only with -v
        logging.getLogger("distributed").setLevel(logging.WARNING)
    jobs = batch.find_jobs(root, datasets, sequences, model_dir, model)
    if not jobs:
        raise click.ClickException(f"{root}: no sequence folders (<DATASET>/01, ...) to process")
    if report is not None:
        batch.check_report_path(report, jobs, overwrite)
    from ctc import progress

    options = batch.JobOptions(device=device, overwrite=overwrite, evaluate=evaluate, quiet=progress.QUIET)
    try:
        with batch.open_client(scheduler, workers, threads) as client:
            link = batch.dashboard(client)
            click.echo(f"{counted(len(jobs), 'sequence')} on "
                       f"{counted(len(client.scheduler_info()['workers']), 'worker')}"
                       + (f", dashboard {link}" if link else ""), err=True)
            results = batch.run_batch(jobs, options, client)
    finally:
        if scheduler is None:  # the local workers are gone (stopped, or killed by Ctrl-C/SIGTERM): what they
            batch.remove_leftovers(jobs)  # were writing is removed, as `run` removes its own
    click.echo(batch.table(results, evaluate))
    if report is not None:
        batch.write_report(report, results, {"root": str(root.resolve()), "command": " ".join(sys.argv)}, jobs,
                           overwrite)
    strict = datasets.strip().lower() != "all"
    note = batch.not_done_note(results, strict)
    if note:
        click.echo(note, err=True)
    if not batch.succeeded(results, strict_models=strict):
        sys.exit(1)
