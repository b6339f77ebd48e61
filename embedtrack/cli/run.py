"""`embedtrack run`: segment and track one CTC sequence folder."""

from __future__ import annotations

from pathlib import Path

import click

from embedtrack.cli._common import batch_size_option, device_option, handle_errors, overwrite_option


@click.command("run")
@click.argument("seq_dir", type=click.Path(path_type=Path))
@click.option("--model", required=True, help="Bundled model name (a CTC dataset name, see `embedtrack models`) "
                                             "or a model folder written by `embedtrack train`.")
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Result folder [default: <SEQ_DIR>_RES, the CTC convention].")
@click.option("--tta/--no-tta", default=None,
              help="8x rotation/flip test-time augmentation [default: on with CUDA, off on CPU].")
@device_option
@batch_size_option(default=4)
@click.option("--fov-border", type=click.IntRange(min=0), default=None,
              help="Drop cells lying entirely within this many pixels of the frame edge [default: the preset's].")
@overwrite_option
@handle_errors
def command(seq_dir: Path, model: str, output: Path | None, tta: bool | None, device: str, batch_size: int,
            fov_border: int | None, overwrite: bool) -> None:
    """Segment and track the frames tNNN.tif in SEQ_DIR and write the CTC result (maskNNN.tif, res_track.txt).

    The result is validated against the CTC rules before it is moved into place; nothing is left behind when
    the run fails or is interrupted.
    """
    from embedtrack.pipeline import RunOptions, run_sequence

    report = run_sequence(seq_dir, model, output, RunOptions(tta=tta, device=device, batch_size=batch_size,
                                                              fov_border=fov_border, overwrite=overwrite))
    click.echo(report.summary())
