"""`embedtrack evaluate RES_DIR GT_DIR`: score a CTC result with py-ctcmetrics."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import click

from embedtrack.cli._common import handle_errors, overwrite_option


def format_table(scores: dict[str, float], requested: list[str], show_all: bool) -> str:
    """The scores as a two-column table; requested metrics first, the rest only with ``show_all``."""
    names = requested + ([k for k in scores if k not in requested] if show_all else [])
    rows = [(name, "n/a" if math.isnan(scores[name]) else f"{scores[name]:.4f}") for name in names if name in scores]
    width = max([len("metric")] + [len(name) for name, _ in rows])
    lines = [f"{'metric':<{width}}  value", f"{'-' * width}  ------"]
    lines += [f"{name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines)


@click.command("evaluate")
@click.argument("res_dir", type=click.Path(path_type=Path))
@click.argument("gt_dir", type=click.Path(path_type=Path))
@click.option("--metrics", default="SEG,TRA,DET", show_default=True,
              help="Comma-separated py-ctcmetrics metrics: SEG, TRA, DET, LNK, CT, TF, BC(i), CCA, CHOTA, HOTA, "
                   "MOTA, IDF1, ...")
@click.option("--json", "json_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write all scores to this JSON file.")
@click.option("--all", "show_all", is_flag=True, help="Print the extra figures too (AOGM, OP_CTB, ...).")
@click.option("--threads", type=click.IntRange(min=0, max=os.cpu_count() or 1), default=1, show_default=True,
              help="Processes py-ctcmetrics uses to match masks (0 = all CPUs; at most the CPU count).")
@overwrite_option
@handle_errors
def command(res_dir: Path, gt_dir: Path, metrics: str, json_file: Path | None, show_all: bool,
            threads: int, overwrite: bool) -> None:
    """Score the result RES_DIR (<SEQ>_RES) against the ground truth GT_DIR (<SEQ>_GT)."""
    from ctc.evaluate import evaluate, parse_metrics
    from ctc.guard import SCORES, Output
    from ctc.writer import check, write_file

    requested = parse_metrics(metrics)
    if json_file is not None:  # before any work
        check([Output(json_file, SCORES)], [res_dir, gt_dir], overwrite)
    scores = evaluate(res_dir, gt_dir, requested, threads=threads)
    click.echo(format_table(scores, requested, show_all))
    if json_file is not None:
        payload = {"result": str(res_dir), "ground_truth": str(gt_dir),
                   "scores": {k: (None if math.isnan(v) else v) for k, v in scores.items()}}
        text = json.dumps(payload, indent=2) + "\n"
        write_file(json_file, text, SCORES, inputs=[res_dir, gt_dir], overwrite=overwrite)
        click.echo(f"scores written to {json_file}")
