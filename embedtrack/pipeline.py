"""`run`: stream a CTC sequence through predict -> cluster -> link -> CTC writer, one frame at a time.

Memory does not grow with the sequence length: only the current frame, the previous frame's labels and
encoder features, and the lineage table (a few numbers per track) are held. The result is written to a
temporary folder, validated with :mod:`ctc.validate` and only then moved into place; an interrupted or failed
run leaves no ``_RES`` folder behind.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ctc.io import ResultWriter, open_sequence
from ctc.lineage import LineageBuilder
from embedtrack.cluster import ClusterParams, cluster
from embedtrack.preprocess import normalise
from embedtrack.link import link

logger = logging.getLogger(__name__)

STAGES = ("read", "predict", "cluster", "link", "write")


@dataclass
class RunOptions:
    tta: bool | None = None  # None: on for CUDA, off for CPU
    device: str = "auto"
    batch_size: int = 4
    fov_border: int | None = None  # None: the model's preset default
    overwrite: bool = False


@dataclass
class RunReport:
    output: Path
    frames: int
    tracks: int
    divisions: int
    device: str
    tta: bool
    seconds: dict[str, float] = field(default_factory=lambda: {s: 0.0 for s in STAGES})

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    def summary(self) -> str:
        stages = ", ".join(f"{s} {self.seconds[s]:.1f}s" for s in STAGES)
        fps = self.frames / max(self.total_seconds, 1e-9)
        return (f"{self.frames} frames, {self.tracks} tracks ({self.divisions} divisions) -> {self.output} | "
                f"{stages} | {fps:.2f} frames/s on {self.device}{' with 8x TTA' if self.tta else ''}")


def default_output(seq_dir: Path) -> Path:
    """CTC convention: ``…/DATASET/01`` -> ``…/DATASET/01_RES``."""
    seq_dir = Path(os.path.abspath(seq_dir))
    return seq_dir.with_name(seq_dir.name + "_RES")


def remove_border_instances(labels: np.ndarray, border: int) -> np.ndarray:
    """Drop instances lying entirely within ``border`` pixels of the frame edge (outside the field of interest)."""
    if border <= 0:
        return labels
    inner = np.zeros(labels.shape, dtype=bool)
    inner[border:-border or None, border:-border or None] = True
    keep = np.zeros(int(labels.max()) + 1, dtype=bool)
    keep[np.unique(labels[inner])] = True
    keep[0] = False
    return np.where(keep[labels], labels, 0)


def run_sequence(seq_dir: str | Path, model: str | Path, output: str | Path | None = None,
                 options: RunOptions | None = None) -> RunReport:
    """Segment and track the frames in ``seq_dir`` with ``model`` (a folder or bundled name) into a CTC result."""
    from embedtrack.predict import Predictor
    from embedtrack.presets import PRESETS
    from embedtrack.registry import load_model
    from embedtrack.device import pick_device, use_all_cores

    opts = options or RunOptions()
    seq_dir = Path(seq_dir)
    sequence = open_sequence(seq_dir)  # checks folder, files, gaps, shapes, dimensionality before any work
    out = Path(output) if output is not None else default_output(seq_dir)
    device = pick_device(opts.device)
    tta = opts.tta if opts.tta is not None else device.type == "cuda"
    if device.type == "cpu":
        use_all_cores()
    net, config = load_model(model, device)
    preset = PRESETS.get(config.preset)
    border = opts.fov_border if opts.fov_border is not None else (preset.fov_border if preset else 0)
    params = ClusterParams(min_size=config.postprocess.min_size, seed_threshold=config.postprocess.seed_threshold,
                           kernel_threshold=config.postprocess.kernel_threshold,
                           min_votes=config.postprocess.min_votes, w_s=config.postprocess.w_s)
    norm = config.normalisation
    predictor = Predictor(net, config.tile_size, device, tta=tta, batch_size=opts.batch_size)
    lineage = LineageBuilder()
    report = RunReport(out, len(sequence), 0, 0, device.type, tta)
    sec = report.seconds
    prev_labels: np.ndarray | None = None
    logger.info("%s: %d frames %s with model %s on %s%s", seq_dir, len(sequence), sequence.shape, config.name,
                device.type, " (8x TTA)" if tta else "")
    with ResultWriter(out, sequence.ndigits, overwrite=opts.overwrite, inputs=[seq_dir]) as writer:
        for i, index in enumerate(tqdm(sequence.indices, desc=f"embedtrack {seq_dir.name}", unit="frame")):
            tic = time.perf_counter()
            frame = normalise(sequence.read(i), norm["low"], norm["high"], source=str(seq_dir))
            sec["read"] += (toc := time.perf_counter()) - tic
            pred = predictor(frame)
            sec["predict"] += (tic := time.perf_counter()) - toc
            labels = cluster(pred.seg[:2], pred.seg[2:4], pred.seg[4], config.coord_scale, params)
            labels = remove_border_instances(labels, border)
            sec["cluster"] += (toc := time.perf_counter()) - tic
            links: dict[int, int] = {}
            if prev_labels is not None and pred.track is not None:
                links = link(labels, pred.track, prev_labels, config.coord_scale)
            tracked = lineage.add_frame(index, labels, links)
            prev_labels = labels
            sec["link"] += (tic := time.perf_counter()) - toc
            writer.write_mask(index, tracked)
            sec["write"] += time.perf_counter() - tic
        tic = time.perf_counter()
        tracks = lineage.tracks()
        writer.finish(tracks)
        sec["write"] += time.perf_counter() - tic
    report.tracks = len(tracks)
    report.divisions = len({t.parent for t in tracks if t.parent})
    logger.info(report.summary())
    return report
