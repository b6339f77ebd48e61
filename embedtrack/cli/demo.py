"""`embedtrack demo`: synthetic sequence -> bundled model -> CTC result -> scores. No data, GPU or network."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from embedtrack.cli._common import device_option, handle_errors

DEMO_MODEL = "Fluo-N2DH-SIM+"
DEMO_SEED = 2026  # not a seed the bundled model was trained on


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Folder for the demo data and result [default: a new temporary folder].")
@click.option("--frames", type=click.IntRange(min=2), default=20, show_default=True)
@click.option("--size", type=click.IntRange(min=64), default=384, show_default=True, help="Frame height and width.")
@click.option("--seed", type=int, default=DEMO_SEED, show_default=True)
@click.option("--model", default=DEMO_MODEL, show_default=True, help="Bundled model name or model folder.")
@click.option("--tta/--no-tta", default=None, help="Test-time augmentation [default: on with CUDA, off on CPU].")
@device_option
@click.option("--show/--no-show", default=True, show_default=True, help="Also render an animated GIF and lineage PNG.")
@handle_errors
def command(out_dir: Path | None, frames: int, size: int, seed: int, model: str, tta: bool | None, device: str,
            show: bool) -> None:
    """Make a synthetic fluorescence sequence with ground truth, segment and track it, and score the result."""
    from ctc.evaluate import evaluate
    from ctc.synth import write_dataset
    from embedtrack.pipeline import run_sequence, RunOptions

    root = out_dir if out_dir is not None else Path(tempfile.mkdtemp(prefix="embedtrack-demo-"))
    dataset = root / DEMO_MODEL
    click.echo(f"1/3 writing a synthetic fluorescence sequence ({frames} frames of {size}x{size}, seed {seed}) "
               f"to {dataset}")
    write_dataset(dataset, "fluo", frames, (size, size), seed, sequences=("01",), overwrite=True)
    click.echo(f"2/3 segmenting and tracking with model {model}")
    report = run_sequence(dataset / "01", model, options=RunOptions(tta=tta, device=device, overwrite=True))
    click.echo("    " + report.summary())
    click.echo("3/3 scoring against the ground truth")
    scores = evaluate(report.output, dataset / "01_GT", ("SEG", "TRA", "DET"))
    click.echo("    " + "  ".join(f"{m} {scores[m]:.3f}" for m in ("SEG", "TRA", "DET")))
    click.echo("    " + lineage_summary(report.output, dataset / "01_GT"))
    if show:
        from embedtrack.cli.show import show_result

        gif = root / "demo.gif"
        show_result(report.output, dataset / "01", gif, root / "demo_lineage.png")
        click.echo(f"pictures: {gif}, {root / 'demo_lineage.png'}")
    click.echo(f"result: {report.output}  ground truth: {dataset / '01_GT'}")


def lineage_summary(res_dir: Path, gt_dir: Path) -> str:
    """Found against true tracks and divisions, and the division F1 (:func:`ctc.divisions.match_divisions`)."""
    from ctc.divisions import match_divisions
    from ctc.io import open_result, open_tracking_gt

    res, found = open_result(res_dir)
    tra, true = open_tracking_gt(gt_dir / "TRA")
    score = match_divisions(found, true, res.read_index, tra.read_index)
    return (f"tracks {len(found)} (true {len(true)}), divisions {score.found} (true {score.true}), "
            f"{score.matched} matched: division F1 {score.f1:.3f}")
