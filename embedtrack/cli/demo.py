"""`embedtrack demo`: synthetic sequence -> bundled model -> CTC result -> scores. No data, GPU or network.

The sequence is drawn from the ``fluo-moderate`` generator preset (:mod:`ctc.synth.presets`), the data the
bundled ``synth-fluorescence`` model was trained and calibrated on (other seeds), so the scores printed are what
that model achieves on data of its own kind; a line after them says so.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from embedtrack.cli._common import device_option, handle_errors, overwrite_option

DEMO_MODEL = "synth-fluorescence"
DEMO_PRESET = "fluo-moderate"  # the generator the demo model learned; the model records its own seeds
DEMO_SEED = 2026  # not a seed the bundled model was trained or calibrated on
DEMO_FOLDER = "synthetic-nuclei"


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
@overwrite_option
@handle_errors
def command(out_dir: Path | None, frames: int, size: int, seed: int, model: str, tta: bool | None, device: str,
            show: bool, overwrite: bool) -> None:
    """Make a synthetic fluorescence sequence with ground truth, segment and track it, and score the result.

    Writes OUT/synthetic-nuclei (the data and its result), OUT/demo.gif and OUT/demo_lineage.png."""
    from ctc.evaluate import evaluate
    from ctc.guard import DEMO_DATASET, GIF, PNG, Output, check_outputs
    from ctc.synth import write_dataset
    from embedtrack.io.pipeline import run_sequence, RunOptions

    root = out_dir if out_dir is not None else Path(tempfile.mkdtemp(prefix="embedtrack-demo-"))
    dataset, gif, tree = root / DEMO_FOLDER, root / "demo.gif", root / "demo_lineage.png"
    outputs = [Output(dataset, DEMO_DATASET)] + ([Output(gif, GIF), Output(tree, PNG)] if show else [])
    check_outputs(outputs, [model] if Path(model).is_dir() else [], overwrite)  # before any work
    click.echo(f"1/3 writing a synthetic fluorescence sequence ({frames} frames of {size}x{size}, seed {seed}) "
               f"to {dataset}")
    write_dataset(dataset, DEMO_PRESET, frames, (size, size), seed, sequences=("01",), overwrite=overwrite,
                  kind=DEMO_DATASET)
    click.echo(f"2/3 segmenting and tracking with model {model}")
    report = run_sequence(dataset / "01", model, options=RunOptions(tta=tta, device=device))
    click.echo("    " + report.summary())
    click.echo("3/3 scoring against the ground truth")
    scores = evaluate(report.output, dataset / "01_GT", ("SEG", "TRA", "DET"))
    click.echo("    " + "  ".join(f"{m} {scores[m]:.3f}" for m in ("SEG", "TRA", "DET")))
    click.echo("    " + lineage_summary(report.output, dataset / "01_GT"))
    click.echo("    " + score_context(model))
    if show:
        from embedtrack.cli.show import show_result

        show_result(report.output, dataset / "01", gif, tree, overwrite=overwrite)
        click.echo(f"pictures: {gif}, {tree}")
    click.echo(f"result: {report.output}  ground truth: {dataset / '01_GT'}")


def score_context(model: str) -> str:
    """One line that says what the scores above mean for a user's own data."""
    if model == DEMO_MODEL:
        return ("(1 = perfect. These are the scores of a model on data like its training data: synthetic nuclei "
                "from the same generator, another seed. On your own images, check the result: README, "
                "'When results are poor'.)")
    return (f"(1 = perfect. {model} did not learn this generator's synthetic nuclei, so these scores say little "
            f"about it on its own kind of data; the demo's model is {DEMO_MODEL}.)")


def lineage_summary(res_dir: Path, gt_dir: Path) -> str:
    """Found against true tracks and divisions, and the division F1 (:func:`ctc.divisions.match_divisions`)."""
    from ctc.divisions import match_divisions
    from ctc.io import open_result, open_tracking_gt

    res, found = open_result(res_dir)
    tra, true = open_tracking_gt(gt_dir / "TRA")
    score = match_divisions(found, true, res.read_index, tra.read_index)
    return (f"tracks {len(found)} (true {len(true)}), divisions {score.found} (true {score.true}), "
            f"{score.matched} matched: division F1 {score.f1:.3f}")
