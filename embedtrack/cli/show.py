"""`embedtrack show RES_DIR --raw FRAMES --out FILE.gif`: an animated picture of a result and its lineage tree.

Reads the result with ``ctc.io`` and the raw frames with :func:`ctc.frames.open_frames` (every form `run`
accepts), one frame at a time, draws with :mod:`embedtrack.io.show` and writes each file through
:mod:`ctc.writer` (under a temporary name beside the target, renamed into place when complete).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import BinaryIO, Iterable

import click
import numpy as np
from PIL import Image

from ctc.errors import CTCFormatError
from ctc.frames import Frames, open_frames
from ctc.guard import GIF, MP4, PNG, Output
from ctc.io import TRACK_FILE_GT, TRACK_FILE_RES, Sequence, open_result, open_tracking_gt
from ctc.lineage import Track
from ctc.progress import progress
from ctc.writer import check, put_video, write_file, write_path
from embedtrack.cli._common import handle_errors, overwrite_option
from embedtrack.errors import EmbedTrackError
from embedtrack.io.show import GifStream, intensity_range, render_lineage, render_overlay

logger = logging.getLogger(__name__)

#: Frames sampled (evenly spaced) to fix one intensity range for the whole animation.
RANGE_SAMPLES = 5


def picture_outputs(out: Path, lineage_out: str | Path | None) -> list[Output]:
    """The animation (GIF, or MP4) and the lineage PNG as guarded outputs."""
    outputs = [Output(out, MP4 if out.suffix.lower() == ".mp4" else GIF)]
    return outputs + ([Output(Path(lineage_out), PNG)] if lineage_out is not None else [])


def open_labels(res_dir: Path) -> tuple[Sequence, list[Track]]:
    """A result folder (maskNNN.tif + res_track.txt) or a GT TRA folder (man_trackNNN.tif + man_track.txt)."""
    if (res_dir / TRACK_FILE_RES).is_file():
        return open_result(res_dir)
    if (res_dir / TRACK_FILE_GT).is_file():
        return open_tracking_gt(res_dir)
    raise CTCFormatError(f"{res_dir}: neither {TRACK_FILE_RES} nor {TRACK_FILE_GT}; not a CTC result or TRA folder")


def _frame_pairs(raw: Frames, labels: Sequence, max_frames: int | None) -> list[tuple[int, int]]:
    """(raw position, label position) for each label frame, up to ``max_frames``; checks shapes and numbers."""
    if raw.shape != labels.shape:
        raise CTCFormatError(
            f"{labels.path}: frames are {labels.shape}, but the raw frames in {raw.path} are {raw.shape}")
    position = {index: i for i, index in enumerate(raw.indices)}
    missing = [index for index in labels.indices if index not in position]
    if missing:
        raise CTCFormatError(f"{raw.path}: no raw frame for frame number(s) {missing[:5]} of {labels.path}")
    pairs = [(position[index], i) for i, index in enumerate(labels.indices)]
    return pairs[:max_frames] if max_frames else pairs


def _require_mp4(path: Path) -> None:
    """MP4 needs imageio with imageio-ffmpeg (not a dependency)."""
    try:
        import imageio.v2  # noqa: F401
        import imageio_ffmpeg  # noqa: F401  (the ffmpeg binary comes with it)
    except ImportError as err:
        raise EmbedTrackError(
            f"{path}: writing MP4 needs the optional package imageio-ffmpeg; install it or write a .gif"
        ) from err


def _write_gif(handle: BinaryIO, frames: Iterable[np.ndarray], fps: float) -> None:
    gif = GifStream(handle, fps=fps)
    for rgb in frames:
        gif.add(rgb)
    gif.close()


def show_result(
    res_dir: str | Path,
    raw_dir: str | Path,
    out: str | Path,
    lineage_out: str | Path | None = None,
    *,
    fps: float = 5.0,
    max_frames: int | None = None,
    max_size: int = 512,
    overwrite: bool = False,
) -> tuple[Path, Path | None]:
    """Write the animation of ``res_dir`` over the raw frames of ``raw_dir`` to ``out`` (.gif, or .mp4 if
    imageio-ffmpeg is installed) and, unless ``lineage_out`` is None, the lineage tree to ``lineage_out`` (PNG).
    An existing picture is replaced only with ``overwrite`` and when it is a GIF/MP4/PNG file.

    Frames are read, drawn and written one at a time; returns the paths written.
    """
    res_dir, raw_dir, out = Path(res_dir), Path(raw_dir), Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise EmbedTrackError(f"{out}: the animation must be a .gif (or .mp4 with imageio-ffmpeg installed)")
    inputs = (res_dir, raw_dir)
    check(picture_outputs(out, lineage_out), inputs, overwrite)  # before any work
    labels, tracks = open_labels(res_dir)
    raw = open_frames(raw_dir)
    pairs = _frame_pairs(raw, labels, max_frames)
    picks = np.unique(np.linspace(0, len(pairs) - 1, min(RANGE_SAMPLES, len(pairs))).round().astype(int))
    value_range = intensity_range(raw.read(pairs[k][0]) for k in picks)
    logger.info("rendering %d frames of %s (intensity range %.4g-%.4g)", len(pairs), res_dir, *value_range)

    frames = (
        render_overlay(raw.read(raw_pos), labels.read(lab_pos), value_range=value_range, max_size=max_size)
        for raw_pos, lab_pos in progress(pairs, desc="show frames", unit="frame")
    )
    if suffix == ".gif":
        write_file(out, lambda handle: _write_gif(handle, frames, fps), GIF, inputs=inputs, overwrite=overwrite)
    else:
        _require_mp4(out)
        write_path(out, lambda tmp: put_video(tmp, frames, fps), MP4, inputs=inputs, overwrite=overwrite)
    logger.info("wrote %s", out)

    if lineage_out is None:
        return out, None
    lineage_out = Path(lineage_out)
    picture = render_lineage(tracks, len(labels), first_frame=labels.indices[0])
    write_file(lineage_out, lambda handle: Image.fromarray(picture).save(handle, format="PNG"), PNG, inputs=inputs,
               overwrite=overwrite)
    logger.info("wrote %s", lineage_out)
    return out, lineage_out


@click.command("show")
@click.argument("res_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--raw", "raw_dir", required=True, type=click.Path(path_type=Path),
              help="The sequence's raw frames, in any form `run` takes: a CTC folder (tNNN.tif), a folder of "
                   "TIFFs, a T×Y×X TIFF stack or a zarr array.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Animation to write: .gif, or .mp4 when imageio-ffmpeg is installed.")
@click.option("--lineage", "lineage_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Lineage tree PNG  [default: OUT with _lineage.png]")
@click.option("--fps", type=click.FloatRange(min=0.1, max=50), default=5.0, show_default=True,
              help="Frames per second of the animation.")
@click.option("--max-frames", type=click.IntRange(min=1), default=None, help="Only the first N frames.")
@click.option("--max-size", type=click.IntRange(min=32), default=512, show_default=True,
              help="Longer side of the animation in pixels (frames are only ever downscaled).")
@overwrite_option
@handle_errors
def command(res_dir: Path, raw_dir: Path, out: Path, lineage_out: Path | None, fps: float,
            max_frames: int | None, max_size: int, overwrite: bool) -> None:
    """Render RES_DIR (a CTC result, or a GT TRA folder) over the raw frames as an animation with coloured
    outlines and track ids, and its lineage tree (time left to right, divisions as connectors) as a PNG."""
    if lineage_out is None:
        lineage_out = out.with_name(f"{out.stem}_lineage.png")
    written = show_result(res_dir, raw_dir, out, lineage_out, fps=fps, max_frames=max_frames, max_size=max_size,
                          overwrite=overwrite)
    for path in written:
        if path is not None:
            click.echo(str(path))
