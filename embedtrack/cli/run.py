"""`embedtrack run`: segment and track one CTC sequence folder (or link masks the user already has)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from embedtrack.cli._common import (appearance_options, batch_size_option, device_option, handle_errors,
                                    inference_options, overwrite_option)


@click.command("run")
@click.argument("seq_dir", type=click.Path(path_type=Path))
@click.option("--model", required=True, help="Bundled model name (a CTC dataset name, see `embedtrack models`) "
                                             "or a model folder written by `embedtrack train`.")
@click.option("--output", type=click.Path(path_type=Path), default=None,
              help="Result folder [default: <SEQ_DIR>_RES, the CTC convention].")
@click.option("--masks", type=click.Path(path_type=Path), default=None,
              help="Folder of instance masks (maskNNN.tif, man_segNNN.tif or man_trackNNN.tif), one per frame: "
                   "keep this segmentation and only link it with the model's tracking offsets.")
@click.option("--tta/--no-tta", default=None,
              help="8x rotation/flip test-time augmentation [default: on with CUDA, off on CPU].")
@device_option
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="Network arithmetic: auto = bf16 on a CPU with bf16 in hardware (avx512_bf16/amx_bf16), "
                   "fp16 on CUDA, fp32 otherwise.")
@click.option("--compile/--no-compile", "compile_net", default=False, show_default=True,
              help="torch.compile the network: about 30 s once per run on a CPU (less with a warm cache), then "
                   "faster per frame; worth it for long sequences (docs/speed.md).")
@click.option("--overlap/--no-overlap", default=None,
              help="Read the next frame and write the previous mask in background threads while the network "
                   "runs [default: on with CUDA, off on CPU, where the threads only compete for the cores].")
@batch_size_option(default=4)
@appearance_options
@inference_options
@overwrite_option
@handle_errors
def command(seq_dir: Path, model: str, output: Path | None, masks: Path | None, tta: bool | None, device: str,
            precision: str, compile_net: bool, overlap: bool | None, batch_size: int, cell_size: str | float,
            denoise: str | float, inference: dict[str, Any], overwrite: bool) -> None:
    """Segment and track SEQ_DIR and write the CTC result (maskNNN.tif, res_track.txt).

    SEQ_DIR is a CTC sequence folder (t000.tif, t001.tif, ...), a folder of 2-D TIFFs with any names (taken in
    natural order, img2.tif before img10.tif; the order is logged and written to <RESULT>.json), one T×Y×X
    TIFF stack (movie.tif -> movie_RES) or a T×Y×X zarr array or OME-Zarr image (movie.zarr -> movie_RES;
    needs the extra zarr).

    The result is validated against the CTC rules before it is moved into place; nothing is left behind when
    the run fails or is interrupted. The settings used are written next to it as <RESULT>.json.

    The appearance stage (--cell-size, --denoise; both auto by default) measures the first frame's cell size
    and noise against the conditions the model was trained at and resamples / smooths the frames when they
    differ clearly; what it estimated and applied is logged and written to <RESULT>.json.
    """
    from embedtrack.io.pipeline import RunOptions, run_sequence, settings_path

    options = RunOptions(tta=tta, device=device, batch_size=batch_size, precision=precision, compile=compile_net,
                         overlap=overlap, overwrite=overwrite, masks=masks, inference=inference, cell_size=cell_size,
                         denoise=denoise)
    report = run_sequence(seq_dir, model, output, options)
    click.echo(report.summary())
    click.echo(f"settings: {settings_path(report.output)}")
