"""`embedtrack train`: train a model on a CTC training dataset."""

from __future__ import annotations

import logging
import math
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from embedtrack.cli._common import device_option, handle_errors

if TYPE_CHECKING:
    from embedtrack.models.architecture import ArchConfig


def _positive_finite(ctx: click.Context, param: click.Parameter, value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise click.BadParameter(f"must be a positive number, got {value}")
    return value


def _parse_widths(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int, int] | None:
    from embedtrack.training.loop import widths_problem

    if value is None:
        return None
    try:
        widths = tuple(int(w) for w in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected three integers like 16,64,128, got {value!r}") from None
    problem = widths_problem(widths)
    if problem:
        raise click.BadParameter(f"{problem}, got {value!r}")
    return widths  # type: ignore[return-value]


@click.command("train")
@click.argument("dataset_dir", type=click.Path(path_type=Path))
@click.option("--preset", required=True, help="Dataset preset (a CTC dataset name or synth-fluo/synth-phc/synth-bf).")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path), help="Model folder to write.")
@click.option("--epochs", type=click.IntRange(min=1), default=15, show_default=True)
@click.option("--crops-per-epoch", type=click.IntRange(min=1), default=None,
              help="Random crop pairs per epoch (default: every overlapping crop of the training frames).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Crop pairs per training step (default: the preset's).")
@device_option
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="Network arithmetic of the training steps: auto = fp16 with gradient scaling on CUDA, bf16 on a "
                   "CPU with bf16 in hardware (avx512_bf16/amx_bf16), else fp32; the losses stay fp32.")
@click.option("--lr", type=float, default=5e-4, show_default=True, callback=_positive_finite,
              help="Peak learning rate (one-cycle).")
@click.option("--widths", default=None, callback=_parse_widths,
              help="Network widths of the three stages, increasing (default: the paper's ERFNet 16,64,128, or "
                   "the --init model's).")
@click.option("--init", "init_model", default=None, metavar="MODEL",
              help="Fine-tune: start from this model's weights (a bundled name or a model folder); the "
                   "architecture is the model's.")
@click.option("--derive-links", is_flag=True,
              help="Data with silver truth but no GT tracking: link ST masks of successive frames by overlap.")
@click.option("--sparse-fill", type=click.Choice(["ignore", "grow"]), default=None,
              help="Presets that train on TRA markers + sparse SEG outlines: around a marker on a frame without "
                   "outline, leave the ring out of the losses (ignore) or grow the marker into the bright part "
                   "first (grow). Default: the preset's.")
@click.option("--name", default=None, help="Model name stored in its config (default: the preset name).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue an interrupted run in --out.")
@click.option("--overwrite", is_flag=True, help="Replace the model folder --out (put back if the run fails).")
@click.option("--ddp", is_flag=True, help="One of several processes started by torchrun (DistributedDataParallel; "
                                          "--batch-size is the global batch). See embedtrack.cli.train_ddp.")
@handle_errors
def command(dataset_dir: Path, preset: str, out_dir: Path, epochs: int, crops_per_epoch: int | None,
            batch_size: int | None, device: str, precision: str, lr: float, widths: tuple[int, int, int] | None,
            init_model: str | None, derive_links: bool, sparse_fill: str | None, name: str | None, seed: int,
            resume: bool, overwrite: bool, ddp: bool) -> None:
    """Train EmbedTrack on DATASET_DIR (CTC training layout: 01/, 01_GT/TRA, 01_ST/SEG, 02/, ...).

    A block at the end of each sequence validates (the last 10 %, or the last quarter of the frames with
    outlines, as the preset says), the rest trains; the epoch with the best validation IoU is
    kept as config.json + weights.pt in --out, next to checkpoint.pt (for --resume) and train_log.jsonl.
    """
    if ddp and os.environ.get("RANK", "0") != "0":  # one progress bar and one log: rank 0's
        os.environ["TQDM_DISABLE"] = "1"
        logging.getLogger().setLevel(logging.WARNING)
    from embedtrack.models.presets import get_preset
    from embedtrack.training.loop import TrainOptions, train

    get_preset(preset)
    arch = _architecture(widths, init_model)
    opts = TrainOptions(epochs=epochs, crops_per_epoch=crops_per_epoch, batch_size=batch_size or None, lr=lr,
                        device=device, seed=seed, derive_links=derive_links, architecture=arch.to_dict(), name=name,
                        init=init_model, sparse_fill=sparse_fill, precision=precision)
    argv = ["embedtrack", *sys.argv[1:]] if sys.argv and sys.argv[0].endswith("embedtrack") else ["embedtrack", "train"]
    context = None
    if ddp:
        from embedtrack.training.distributed import setup

        context = setup(device)
    try:
        summary = train(dataset_dir, preset, out_dir, opts, resume=resume, command=shlex.join(argv), ddp=context,
                        overwrite=overwrite)
    finally:
        if context is not None:
            context.close()
    if context is not None and not context.is_main:
        return
    start = summary.get("start_val_iou")
    click.echo(f"model written to {summary['out']} (best validation IoU {summary['best_val_iou']:.3f}"
               + (f", {start:.3f} before fine-tuning" if start is not None else "")
               + f", min mask size {summary['min_size']} px)")


def _architecture(widths: tuple[int, int, int] | None, init_model: str | None) -> ArchConfig:
    """The network shape: from --widths, else from the --init model, else the paper's."""
    from embedtrack.models.architecture import ArchConfig
    from embedtrack.models.registry import read_config, resolve_model

    arch = ArchConfig.from_dict(read_config(resolve_model(init_model)).architecture) if init_model else ArchConfig()
    if widths is None:
        return arch
    if init_model and tuple(widths) != tuple(arch.widths):
        raise click.BadParameter(f"{','.join(map(str, widths))} differs from the widths of --init {init_model} "
                                 f"({','.join(map(str, arch.widths))}); leave --widths out to fine-tune",
                                 param_hint="--widths")
    return ArchConfig.from_dict({**arch.to_dict(), "widths": list(widths)})
