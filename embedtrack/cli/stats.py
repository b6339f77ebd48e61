"""`embedtrack stats DATASET_DIR`: cell counts and motility per sequence (paper Table 1, right half)."""

from __future__ import annotations

import math
from pathlib import Path

import click

from embedtrack.cli._common import handle_errors


@click.command("stats")
@click.argument("dataset_dir", type=click.Path(path_type=Path))
@handle_errors
def command(dataset_dir: Path) -> None:
    """Per sequence of DATASET_DIR: cells in the last frame, and the overlap (intersection / smaller area)
    between successive frames below which the 10 % most motile cells lie.

    Uses the silver truth (<SEQ>_ST/SEG) where present, named after the GT/TRA markers when those exist,
    else followed by maximal overlap; without ST the GT/TRA masks.
    """
    from ctc.stats import dataset_stats

    stats = dataset_stats(dataset_dir)
    header = ("sequence", "source", "frames", "cells last frame", "overlap fastest 10%", "median overlap", "pairs")
    rows = [(s.sequence, s.source, str(s.frames), str(s.cells_last_frame),
             "n/a" if math.isnan(s.overlap_p10) else f"{s.overlap_p10:.3f}",
             "n/a" if math.isnan(s.overlap_median) else f"{s.overlap_median:.3f}", str(s.pairs)) for s in stats]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    click.echo(f"{dataset_dir}")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
