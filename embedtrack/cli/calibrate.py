"""`embedtrack calibrate`: choose a model's post-processing thresholds on annotated frames (no retraining)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from embedtrack.training.calibrate import CLUSTER_GRID, LINK_GRID
from embedtrack.cli._common import device_option, handle_errors, overwrite_option


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


def _grid(text: str, option: str, name: str) -> tuple[float, ...]:
    """The values of a grid option, each one a valid value of the inference setting ``name``."""
    values = _floats(text, option)
    for value in values:
        problem = _grid_problem(name, value)
        if problem:
            raise click.BadParameter(f"{value:g}: {problem}", param_hint=option)
    return values


def _grid_problem(name: str, value: float) -> str | None:
    """Why ``value`` cannot be tried for ``name`` (min_size is a factor of the model's), or None."""
    from embedtrack.errors import ConfigError
    from embedtrack.models.inference_config import InferenceConfig

    if name == "min_size":
        return None if math.isfinite(value) and value > 0 else "expected a positive factor"
    if name == "seed_window" and not (value.is_integer() and int(value) % 2 == 1):
        return "expected an odd whole number"
    try:
        InferenceConfig().replace(**{name: int(value) if name == "seed_window" else value})
    except ConfigError as err:
        return str(err).removeprefix("InferenceConfig: ")
    return None


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
@overwrite_option
@handle_errors
def command(model: str, dataset_dir: Path, sequences: str | None, metric: str, out_dir: Path | None,
            seed_thresholds: str, kernel_thresholds: str, min_size_factors: str, seed_windows: str,
            daughter_ratios: str, device: str, overwrite: bool) -> None:
    """Choose seed, kernel, minimum-size, seediness-window and linking thresholds of MODEL on DATASET_DIR (CTC training layout:
    <SEQ>/tNNN.tif with <SEQ>_GT/TRA and <SEQ>_GT/SEG) by maximising SEG + DET (then TRA) over a small grid.

    The network runs once per frame; each grid point is tracked, written and scored with py-ctcmetrics (in a
    hidden scratch folder beside --out, or beside DATASET_DIR).
    """
    from ctc.guard import MODEL, check_output
    from embedtrack.training.calibrate import calibrate, load_annotated
    from embedtrack.models.registry import resolve_model, write_calibrated
    from embedtrack.inference.tracker import Tracker

    if out_dir is not None:  # before any work
        check_output(out_dir, [resolve_model(model), dataset_dir], replace=overwrite, kind=MODEL)
    cluster_grid = {"seed_threshold": _grid(seed_thresholds, "--seed-thresholds", "seed_threshold"),
                    "kernel_threshold": _grid(kernel_thresholds, "--kernel-thresholds", "kernel_threshold"),
                    "min_size": _grid(min_size_factors, "--min-size-factors", "min_size"),
                    "seed_window": _grid(seed_windows, "--seed-windows", "seed_window")}
    link_grid = {**LINK_GRID, "min_daughter_ratio": _grid(daughter_ratios, "--daughter-ratios", "min_daughter_ratio")}
    names = [s.strip() for s in sequences.split(",") if s.strip()] if sequences else None
    annotated = load_annotated(dataset_dir, names)
    tracker = Tracker.from_model(model, device=device, tta=False)
    result = calibrate(tracker, annotated, metric, cluster_grid, link_grid, scratch_beside=out_dir or dataset_dir)
    click.echo(f"best on {', '.join(s.name for s in annotated)} ({metric} = {result.score:.3f}): "
               + ", ".join(f"{k} {v}" for k, v in result.best.items()))
    if out_dir is None:
        flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in result.best.items() if not isinstance(v, bool))
        click.echo(f"to use them: embedtrack run SEQ --model {model} {flags}  (or --out to write a model)")
        return
    grid = {**cluster_grid, **(link_grid if metric == "seg+det+tra" else {})}
    record = result.record({k: list(v) for k, v in grid.items()}, str(dataset_dir.resolve()))
    write_calibrated(model, out_dir, tracker.config.replace(**result.best), record, overwrite, [dataset_dir])
    click.echo(f"model with calibrated thresholds written to {out_dir}")
    click.echo(json.dumps(result.best))
