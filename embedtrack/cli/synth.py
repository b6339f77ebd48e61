"""`embedtrack synth`: write a synthetic CTC training dataset with full ground truth."""

from __future__ import annotations

import time
from pathlib import Path

import click

from embedtrack.cli._common import handle_errors, overwrite_option

PRESET_NAMES = ("fluo", "fluo-moderate", "phc", "bf")  # kept in step with ctc.synth.SYNTH_PRESETS (checked by the tests)


@click.command(name="synth")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--preset", type=click.Choice(PRESET_NAMES), default="fluo", show_default=True,
              help="Modality: fluo (fluorescent nuclei), fluo-moderate (fluo in moderate conditions, as in the "
                   "demo), phc (phase contrast), bf (brightfield).")
@click.option("--frames", type=click.IntRange(min=1), default=50, show_default=True, help="Frames per sequence.")
@click.option("--size", type=(click.IntRange(min=16), click.IntRange(min=16)), default=(512, 512),
              show_default=True, metavar="H W", help="Frame height and width in pixels.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Random seed; the same seed gives the same dataset.")
@click.option("--sequences", default="01,02", show_default=True,
              help="Comma-separated sequence names to write (each gets its own derived seed).")
@click.option("--appearance", default="all", show_default=True, metavar="LIST",
              help="Comma-separated appearance families the cells may draw (interior patterns and outline "
                   "shapes); 'list' prints the families of each preset and exits.")
@click.option("--hold-out", default="", metavar="LIST",
              help="Comma-separated appearance families to leave out (e.g. to score a model on them later).")
@overwrite_option
@handle_errors
def command(out_dir: Path, preset: str, frames: int, size: tuple[int, int], seed: int, sequences: str,
            appearance: str, hold_out: str, overwrite: bool) -> None:
    """Write a synthetic CTC dataset to OUT_DIR: <SEQ>/tNNN.tif, <SEQ>_GT/TRA (+ man_track.txt),
    <SEQ>_GT/SEG (sparse), <SEQ>_ST/SEG (every frame) for sequences 01 and 02.

    Cells move, touch, divide, enter and leave the view; appearance (noise, blur, contrast, texture,
    illumination, cell size and density) is drawn per sequence, interior patterns and outlines per cell from
    named families (--appearance list). The dataset appears only when complete.
    """
    from ctc.io import is_sequence_name
    from ctc.synth import write_dataset  # imported on use: keeps `embedtrack --help` fast
    from ctc.synth.appearance import PATTERNS, SHAPES

    if appearance.strip() == "list":
        for name, patterns in PATTERNS.items():
            click.echo(f"{name}: patterns {', '.join(patterns)}; shapes {', '.join(SHAPES)}")
        return
    chosen = None if appearance.strip() == "all" else _names(appearance)
    names = tuple(s.strip() for s in sequences.split(",") if s.strip())
    if not names or not all(is_sequence_name(n) for n in names) or len(set(names)) != len(names):
        raise click.BadParameter(f"expected distinct digit names like 01,02, got {sequences!r}",
                                 param_hint="--sequences")
    start = time.perf_counter()
    target = write_dataset(out_dir, preset, frames, size, seed, sequences=names, overwrite=overwrite,
                           appearance=chosen, hold_out=_names(hold_out))
    click.echo(f"wrote {target} ({preset}, {'+'.join(names)}, {frames} frames of {size[0]}x{size[1]}, "
               f"seed {seed}) in {time.perf_counter() - start:.1f} s")


def _names(text: str) -> tuple[str, ...]:
    """Comma-separated names, blanks dropped."""
    return tuple(n.strip() for n in text.split(",") if n.strip())
