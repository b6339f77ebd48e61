"""`embedtrack calibrate`: choose a model's post-processing thresholds on annotated frames (no retraining)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from embedtrack.cli._common import device_option, handle_errors


@click.command("calibrate")
@click.argument("model")
@click.argument("dataset_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--sequences", default=None, help="Comma-separated sequences with ground truth (default: all).")
@click.option("--metric", type=click.Choice(["seg+det+tra", "seg+det"]), default="seg+det+tra", show_default=True,
              help="What the thresholds maximise; seg+det leaves the linking thresholds as they are.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write a copy of MODEL with the chosen thresholds here (default: only print them).")
@device_option
@handle_errors
def command(model: str, dataset_dir: Path, sequences: str | None, metric: str, out_dir: Path | None,
            device: str) -> None:
    """Choose seed, kernel, minimum-size and linking thresholds of MODEL on DATASET_DIR (CTC training layout:
    <SEQ>/tNNN.tif with <SEQ>_GT/TRA and <SEQ>_GT/SEG) by maximising SEG + DET (then TRA) over a small grid.

    The network runs once per frame; each grid point is tracked, written and scored with py-ctcmetrics.
    """
    from embedtrack.calibrate import CLUSTER_GRID, LINK_GRID, calibrate, load_annotated
    from embedtrack.registry import write_calibrated
    from embedtrack.tracker import Tracker

    names = [s.strip() for s in sequences.split(",") if s.strip()] if sequences else None
    annotated = load_annotated(dataset_dir, names)
    tracker = Tracker.from_model(model, device=device, tta=False)
    result = calibrate(tracker, annotated, metric)
    click.echo(f"best on {', '.join(s.name for s in annotated)} ({metric} = {result.score:.3f}): "
               + ", ".join(f"{k} {v}" for k, v in result.best.items()))
    if out_dir is None:
        flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in result.best.items() if not isinstance(v, bool))
        click.echo(f"to use them: embedtrack run SEQ --model {model} {flags}  (or --out to write a model)")
        return
    grid = {**CLUSTER_GRID, **(LINK_GRID if metric == "seg+det+tra" else {})}
    record = result.record({k: list(v) for k, v in grid.items()}, str(dataset_dir.resolve()))
    write_calibrated(model, out_dir, tracker.config.replace(**result.best), record)
    click.echo(f"model with calibrated thresholds written to {out_dir}")
    click.echo(json.dumps(result.best))
