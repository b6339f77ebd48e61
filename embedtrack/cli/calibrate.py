"""`embedtrack calibrate`: choose a model's post-processing thresholds on annotated frames (no retraining)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from embedtrack.calibrate import CLUSTER_GRID, LINK_GRID
from embedtrack.cli._common import device_option, handle_errors


def _text(values: tuple[float, ...]) -> str:
    return ",".join(str(v) for v in values)


def _floats(text: str, option: str) -> tuple[float, ...]:
    """Comma-separated numbers of a grid option; one clear error otherwise."""
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {text!r}", param_hint=option) from None
    if not values:
        raise click.BadParameter("expected at least one value", param_hint=option)
    return values


@click.command("calibrate")
@click.argument("model")
@click.argument("dataset_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--sequences", default=None, help="Comma-separated sequences with ground truth (default: all).")
@click.option("--metric", type=click.Choice(["seg+det+tra", "seg+det"]), default="seg+det+tra", show_default=True,
              help="What the thresholds maximise; seg+det leaves the linking thresholds as they are.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write a copy of MODEL with the chosen thresholds here (default: only print them).")
@click.option("--seed-thresholds", default=_text(CLUSTER_GRID["seed_threshold"]), show_default=True,
              help="Seed thresholds to try.")
@click.option("--kernel-thresholds", default=_text(CLUSTER_GRID["kernel_threshold"]), show_default=True,
              help="Kernel thresholds to try.")
@click.option("--min-size-factors", default=_text(CLUSTER_GRID["min_size"]), show_default=True,
              help="Minimum sizes to try, as factors of the model's.")
@click.option("--seed-windows", default=_text(CLUSTER_GRID["seed_window"]), show_default=True,
              help="Seediness smoothing windows to try (odd sizes; 1: none).")
@click.option("--daughter-ratios", default=_text(LINK_GRID["min_daughter_ratio"]), show_default=True,
              help="Minimum daughter ratios to try (linking).")
@device_option
@handle_errors
def command(model: str, dataset_dir: Path, sequences: str | None, metric: str, out_dir: Path | None,
            seed_thresholds: str, kernel_thresholds: str, min_size_factors: str, seed_windows: str,
            daughter_ratios: str,
            device: str) -> None:
    """Choose seed, kernel, minimum-size, seediness-window and linking thresholds of MODEL on DATASET_DIR (CTC training layout:
    <SEQ>/tNNN.tif with <SEQ>_GT/TRA and <SEQ>_GT/SEG) by maximising SEG + DET (then TRA) over a small grid.

    The network runs once per frame; each grid point is tracked, written and scored with py-ctcmetrics.
    """
    from embedtrack.calibrate import calibrate, load_annotated
    from embedtrack.registry import write_calibrated
    from embedtrack.tracker import Tracker

    names = [s.strip() for s in sequences.split(",") if s.strip()] if sequences else None
    annotated = load_annotated(dataset_dir, names)
    tracker = Tracker.from_model(model, device=device, tta=False)
    cluster_grid = {"seed_threshold": _floats(seed_thresholds, "--seed-thresholds"),
                    "kernel_threshold": _floats(kernel_thresholds, "--kernel-thresholds"),
                    "min_size": _floats(min_size_factors, "--min-size-factors"),
                    "seed_window": _floats(seed_windows, "--seed-windows")}
    link_grid = {**LINK_GRID, "min_daughter_ratio": _floats(daughter_ratios, "--daughter-ratios")}
    result = calibrate(tracker, annotated, metric, cluster_grid, link_grid)
    click.echo(f"best on {', '.join(s.name for s in annotated)} ({metric} = {result.score:.3f}): "
               + ", ".join(f"{k} {v}" for k, v in result.best.items()))
    if out_dir is None:
        flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in result.best.items() if not isinstance(v, bool))
        click.echo(f"to use them: embedtrack run SEQ --model {model} {flags}  (or --out to write a model)")
        return
    grid = {**cluster_grid, **(link_grid if metric == "seg+det+tra" else {})}
    record = result.record({k: list(v) for k, v in grid.items()}, str(dataset_dir.resolve()))
    write_calibrated(model, out_dir, tracker.config.replace(**result.best), record)
    click.echo(f"model with calibrated thresholds written to {out_dir}")
    click.echo(json.dumps(result.best))
