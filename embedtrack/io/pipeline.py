"""`run`: a CTC sequence folder through :class:`~embedtrack.inference.tracker.Tracker` into a CTC result folder.

The disk edge of the tracker: frames are read lazily, tracked one at a time and written as they come, so memory
does not grow with the sequence length (only the previous frame's features and labels and the lineage table
are held). Reading (and normalising) the next frame and writing the previous mask run in one background thread
each while the network works on the current frame (``RunOptions.overlap``; by default on with CUDA, where the
network would otherwise wait for the disk, and off on a CPU, where the threads only compete with it); the
report's per-stage seconds are the busy time of each stage, measured in the thread that does the work, beside
the wall-clock time of the run. The result is written to a temporary folder, validated with :mod:`ctc.validate`
and only then moved into place; an interrupted or failed run leaves no ``_RES`` folder behind. The effective
inference settings, and what the appearance stage (:mod:`embedtrack.inference.appearance`) estimated and applied, are
written next to it as ``<RES>.json`` (outside the CTC folder, which stays CTC-exact).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ctc.frames import Frames, open_frames, sequence_name
from ctc.wording import counted
from ctc.guard import RESULT, SETTINGS, Output, check_outputs
from ctc.io import ResultWriter, Sequence, discover_frames, open_sequence, tiff_header
from ctc.lineage import division_count
from ctc.progress import progress
from embedtrack.inference.background import WriteBehind
from embedtrack.errors import EmbedTrackError
from embedtrack.inference.tracker import FrameResult, Tracker

logger = logging.getLogger(__name__)

STAGES = ("read", "predict", "cluster", "link", "write")
MASK_PREFIXES = ("mask", "man_seg", "man_track")


@dataclass
class RunOptions:
    tta: bool | None = None  # None: on for CUDA, off for CPU
    device: str = "auto"
    batch_size: int = 4
    precision: str = "auto"  # auto, fp32 or bf16 (see embedtrack.inference.predict)
    compile: bool = False  # torch.compile the network (pays off only for long sequences; see docs/speed.md)
    overwrite: bool = False
    masks: Path | None = None  # a folder of instance masks to keep and only link
    inference: dict[str, Any] = field(default_factory=dict)  # InferenceConfig overrides (None = the model's)
    overlap: bool | None = None  # read ahead / write behind in threads (same result); None: on for CUDA only
    cell_size: str | float = "auto"  # appearance stage (embedtrack.inference.appearance): auto, off or a diameter in pixels
    denoise: str | float = "auto"  # auto, off or a Gaussian sigma in pixels


@dataclass
class RunReport:
    output: Path
    frames: int
    tracks: int
    divisions: int
    device: str
    tta: bool
    seconds: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in STAGES})  # busy time per stage
    precision: str = "fp32"
    wall_seconds: float = 0.0  # from the first frame read to the result in place (what the stages cover)
    overlap: bool = True

    @property
    def total_seconds(self) -> float:
        """The busy seconds of all stages; more than :attr:`wall_seconds` when reading and writing overlap."""
        return sum(self.seconds.values())

    def summary(self) -> str:
        stages = ", ".join(f"{s} {self.seconds[s]:.1f}s" for s in STAGES)
        how = "read and write overlapped with compute" if self.overlap else "one after the other"
        fps = self.frames / max(self.wall_seconds, 1e-9)
        return (f"{counted(self.frames, 'frame')}, {counted(self.tracks, 'track')} "
                f"({counted(self.divisions, 'division')}) -> {self.output} | "
                f"busy: {stages} ({how}) | {self.wall_seconds:.1f}s wall, {fps:.2f} frames/s on {self.device} "
                f"({self.precision}){' with 8x TTA' if self.tta else ''}")


def default_output(seq_dir: Path) -> Path:
    """CTC convention: ``…/DATASET/01`` -> ``…/DATASET/01_RES``; a stack ``…/movie.tif`` (or a zarr array
    ``…/movie.zarr``, ``…/movie.ome.zarr``) -> ``…/movie_RES``."""
    seq_dir = Path(os.path.abspath(seq_dir))
    return seq_dir.with_name(sequence_name(seq_dir) + "_RES")


def settings_path(output: Path) -> Path:
    """Where the effective settings of a result go: ``<RES>/../<RES name>.json``."""
    return output.with_name(output.name + ".json")


def open_masks(mask_dir: str | Path, sequence: Frames) -> Sequence:
    """The mask files of ``mask_dir`` (``maskNNN.tif``, ``man_segNNN.tif`` or ``man_trackNNN.tif``), checked
    against the raw frames: the same frame numbers, the same shape, integer labels."""
    folder = Path(mask_dir)
    if not folder.is_dir():
        raise EmbedTrackError(f"{folder}: mask folder not found")
    prefix = next((p for p in MASK_PREFIXES if any(folder.glob(f"{p}[0-9]*.tif"))), None)
    if prefix is None:
        raise EmbedTrackError(f"{folder}: no mask files (maskNNN.tif, man_segNNN.tif or man_trackNNN.tif)")
    indices, files, _ = discover_frames(folder, prefix)
    if indices != sequence.indices:
        raise EmbedTrackError(f"{folder}: mask frame numbers {_span(indices)} do not match the frames "
                              f"{_span(sequence.indices)} of {sequence.path}")
    for file in files:
        shape, dtype = tiff_header(file)
        if tuple(shape) != sequence.shape:
            raise EmbedTrackError(f"{file}: mask has shape {tuple(shape)}, the frames have {sequence.shape}")
        if not np.issubdtype(dtype, np.integer):
            raise EmbedTrackError(f"{file}: mask must hold integer labels, got dtype {dtype}")
    masks = open_sequence(folder, prefix)
    return masks


def _span(indices: list[int]) -> str:
    return f"{len(indices)} frames {indices[0]}..{indices[-1]}" if indices else "none"


def _add_seconds(seconds: dict[str, float], result: FrameResult) -> None:
    """Add a tracked frame's stage seconds to the run's (normalising counts as reading)."""
    seconds["read"] += result.seconds["read"] + result.seconds["normalise"]
    for stage in ("predict", "cluster", "link"):
        seconds[stage] += result.seconds[stage]


def _settings_bytes(data: dict[str, Any]) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def _remove_orphan_settings(settings: Path, out: Path) -> None:
    """Remove a settings file of ours whose result folder is gone (e.g. deleted to redo it): it describes
    nothing. Any other file there is left for :func:`ctc.guard.check_outputs` to refuse."""
    if out.exists() or out.is_symlink() or SETTINGS.problem(settings) is not None:
        return
    if json.loads(settings.read_text(encoding="utf-8")).get("result") == str(out):
        logger.warning("%s: removing the settings of a result that no longer exists", settings)
        settings.unlink()


def run_inputs(seq_dir: Path, opts: RunOptions, model: str | Path | Tracker) -> list[Path]:
    """Everything a run reads: the sequence, the masks, the model folder (a bundled one is protected anyway)."""
    inputs = [seq_dir] + ([Path(opts.masks)] if opts.masks is not None else [])
    if not isinstance(model, Tracker) and Path(model).is_dir():
        inputs.append(Path(model))
    return inputs


def run_sequence(seq_dir: str | Path, model: str | Path | Tracker, output: str | Path | None = None,
                 options: RunOptions | None = None) -> RunReport:
    """Segment and track the frames in ``seq_dir`` with ``model`` (a folder, a bundled name or a ready
    :class:`Tracker`) into a CTC result, and write the effective settings to ``<RES>.json``."""
    opts = options or RunOptions()
    seq_dir = Path(seq_dir)
    if not isinstance(model, Tracker):
        from embedtrack.models.registry import resolve_model

        resolve_model(model)  # a mistyped model name is the first error, before inputs and outputs are checked
    sequence = open_frames(seq_dir)  # checks files, gaps, shapes, dimensionality before any work
    masks = open_masks(opts.masks, sequence) if opts.masks is not None else None
    out = Path(os.path.abspath(output)) if output is not None else default_output(seq_dir)
    inputs = run_inputs(seq_dir, opts, model)
    settings = settings_path(out)
    _remove_orphan_settings(settings, out)
    outputs = [Output(settings, SETTINGS)]
    check_outputs([Output(out, RESULT), *outputs], inputs, opts.overwrite)  # before any work
    if isinstance(model, Tracker):
        tracker = model.with_overrides(**opts.inference)
    else:
        tracker = Tracker.from_model(model, opts.device, opts.tta, opts.batch_size, opts.precision,
                                     opts.compile, **opts.inference)
    device, tta = tracker.info.get("device", "cpu"), bool(tracker.info.get("tta", False))
    overlap = opts.overlap if opts.overlap is not None else device == "cuda"
    report = RunReport(out, len(sequence), 0, 0, device, tta, precision=str(tracker.info.get("precision", "fp32")),
                       overlap=overlap)
    sec = report.seconds
    logger.info("%s: %d frames %s with model %s on %s%s, precision %s", seq_dir, len(sequence), sequence.shape,
                tracker.info.get("model", "?"), device, " (8x TTA)" if tta else "", tracker.info.get("precision", "?"))
    logger.info("inference settings: %s", repr(tracker.config.to_dict()))  # a lone dict would be taken as %-mapping
    tic = time.perf_counter()
    with (ResultWriter(out, sequence.ndigits, opts.overwrite, inputs, outputs) as writer,
          WriteBehind(threaded=overlap) as behind,  # joined before the writer removes its temporary folder
          tracker.iter_track(sequence, masks, sequence.indices[0], prefetch=overlap, cell_size=opts.cell_size,
                             denoise=opts.denoise) as stream):
        for result in progress(stream, total=len(sequence), desc=f"embedtrack {seq_dir.name}", unit="frame"):
            _add_seconds(sec, result)
            behind.submit(writer.write_mask, result.t, result.labels)
        behind.wait()
        toc = time.perf_counter()
        tracks = stream.tracks()
        report.tracks = len(tracks)
        report.divisions = division_count(tracks)
        text = _settings_bytes({"sequence": str(seq_dir), **_input_record(sequence), "result": str(out),
                                "masks": str(opts.masks or "") or None, **tracker.info, "overlap": overlap,
                                "inference": tracker.config.to_dict(), "appearance": _appearance_record(stream, opts),
                                "frames": report.frames, "tracks": report.tracks, "divisions": report.divisions})
        writer.finish(tracks, extra={settings: text})  # the result and its settings land together
        sec["write"] += behind.busy_seconds + time.perf_counter() - toc
    report.wall_seconds = time.perf_counter() - tic
    logger.debug(report.summary())
    return report


def _appearance_record(stream: Any, opts: RunOptions) -> dict[str, Any]:
    """What the appearance stage was asked (``cell_size``, ``denoise``) and what it estimated and applied."""
    applied = stream.appearance.to_dict() if stream.appearance is not None else {}
    return {"cell_size": opts.cell_size, "denoise": opts.denoise, **applied}


def _input_record(sequence: Frames) -> dict[str, Any]:
    """The input's form and, for a folder of TIFFs, the files in the order they were taken as frames."""
    record: dict[str, Any] = {"input_kind": sequence.kind}
    if sequence.kind == "folder":
        record["frame_files"] = [f.name for f in getattr(sequence, "files", [])]
    return record
