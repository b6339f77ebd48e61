"""Post-processing thresholds chosen on annotated frames (clustering §3.3, linking §3.4), without retraining.

The network runs once per frame; its predictions are kept and replayed while a small grid of
:class:`~embedtrack.models.inference_config.InferenceConfig` values is tried through the real :class:`Tracker`. Every
grid point is written as a CTC result and scored against the ground truth with :func:`ctc.evaluate.evaluate`
(py-ctcmetrics), so the choice optimises the challenge's own measures:

1. clustering: ``seed_threshold`` x ``kernel_threshold`` x ``min_size`` x ``seed_window`` maximising SEG + DET;
2. linking, with the best clustering: ``min_daughter_ratio`` x ``background_competes`` maximising TRA (when the
   ground truth has tracking annotations, i.e. ``metric`` ``seg+det+tra``).

Ties go to the grid point closest to the model's current values, so calibration never moves a threshold
without a gain.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ctc.evaluate import evaluate
from ctc.fsutil import make_parents, remove_made, temp_dir_beside
from ctc.guard import remove_stale_temps
from embedtrack.errors import EmbedTrackError
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.models.predictions import Predictions
from embedtrack.inference.tracker import Tracker

logger = logging.getLogger(__name__)

CLUSTER_GRID: dict[str, tuple[float, ...]] = {
    "seed_threshold": (0.3, 0.4, 0.5, 0.6, 0.7),
    "kernel_threshold": (0.3, 0.5, 0.7),
    "min_size": (0.5, 1.0, 2.0),  # factors of the model's minimum size
    "seed_window": (1, 3),
}
LINK_GRID: dict[str, tuple[Any, ...]] = {
    "min_daughter_ratio": (0.0, 0.25, 0.5),
    "background_competes": (True, False),
}
METRICS = {"seg+det": ("SEG", "DET"), "seg+det+tra": ("SEG", "DET", "TRA")}


@dataclass
class AnnotatedSequence:
    """Raw frames of one sequence (in order) and its CTC ground-truth folder (``<SEQ>_GT``)."""

    name: str
    frames: list[np.ndarray]
    gt_dir: Path
    first_index: int = 0  # frame number of the first frame


@dataclass
class Calibration:
    """The chosen values, their score, and every grid point tried with its scores."""

    best: dict[str, Any]
    score: float
    metric: str
    table: list[dict[str, Any]] = field(default_factory=list)

    def record(self, grid: dict[str, Any], data: str) -> dict[str, Any]:
        """What a model's ``config.json`` keeps of it."""
        return {"metric": self.metric, "best": self.best, "score": round(self.score, 4), "grid": grid,
                "data": data, "table": self.table}


class _Replay:
    """A predictor that hands out stored predictions in order (the network ran once)."""

    def __init__(self, predictions: list[Predictions]) -> None:
        self.predictions = predictions
        self.position = 0

    def __call__(self, frame: np.ndarray) -> Predictions:
        pred = self.predictions[self.position]
        self.position += 1
        return pred

    def reset(self) -> None:
        self.position = 0


def load_annotated(dataset_dir: Path, names: list[str] | None = None) -> list[AnnotatedSequence]:
    """The sequences of a CTC training dataset that have tracking ground truth (all, or ``names``)."""
    from ctc.io import TRACK_FILE_GT, find_sequences, open_sequence, require_regular_file

    dataset_dir = Path(dataset_dir)
    available = find_sequences(dataset_dir)
    chosen = names or available
    out = []
    for name in chosen:
        gt_dir = dataset_dir / f"{name}_GT"
        if name not in available:
            raise EmbedTrackError(f"{dataset_dir / name}: no such sequence (found: {', '.join(available) or 'none'})")
        track_file = gt_dir / "TRA" / TRACK_FILE_GT
        if not track_file.exists() and not track_file.is_symlink():
            raise EmbedTrackError(f"{track_file}: missing; calibration needs tracking ground truth (TRA markers and "
                                  "man_track.txt) and SEG masks")
        require_regular_file(track_file, "track file")  # a FIFO, folder or broken link is named as such
        seq = open_sequence(dataset_dir / name)
        out.append(AnnotatedSequence(name, [seq.read(i) for i in range(len(seq))], gt_dir, seq.indices[0]))
    return out


def predict_once(tracker: Tracker, frames: Sequence[np.ndarray]) -> list[Predictions]:
    """The tracker's predictions for every frame of one sequence, in order."""
    from embedtrack.inference.preprocess import normalise

    tracker.reset()
    config = tracker.config
    return [tracker.predict(normalise(frame, config.norm_low, config.norm_high)) for frame in frames]


def _score(config: InferenceConfig, data: list[tuple[AnnotatedSequence, list[Predictions]]], metrics: tuple[str, ...],
           workdir: Path) -> dict[str, float]:
    """Mean scores over the sequences of one configuration (a CTC result written and evaluated per sequence)."""
    totals = dict.fromkeys(metrics, 0.0)
    for seq, preds in data:
        result = Tracker(config, predictor=_Replay(preds)).track(seq.frames, first_index=seq.first_index)
        if not any(labels.any() for labels in result.labels):
            continue  # no cell anywhere: every score 0 (and no CTC result can be written)
        io_log = logging.getLogger("ctc.io")
        level = io_log.level
        io_log.setLevel(logging.ERROR)  # empty frames at a poor grid point are expected, not news
        try:
            out = result.write_ctc(workdir / f"{seq.name}_RES", overwrite=True)
        finally:
            io_log.setLevel(level)
        scores = evaluate(out, seq.gt_dir, metrics)
        for m in metrics:
            totals[m] += float(scores[m]) / len(data)
    return totals


@contextlib.contextmanager
def scratch_folder(beside: Path | None) -> Iterator[Path]:
    """A temporary folder ``.<name>.tmp-<pid>-XXXXXXXX`` for the block: beside ``beside``, else in the system's
    temporary folder (named for ``embedtrack-calibrate``); removed at the end, and the ones killed runs left
    there are removed first."""
    if beside is None:
        beside = Path(tempfile.gettempdir()) / "embedtrack-calibrate"
    remove_stale_temps(beside)
    made = make_parents(beside)
    folder = temp_dir_beside(beside)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        remove_made(made)


def _points(grid: dict[str, tuple[Any, ...]], base: InferenceConfig) -> list[dict[str, Any]]:
    """Every grid point as InferenceConfig values (``min_size`` factors become pixels)."""
    points = []
    for combo in itertools.product(*grid.values()):
        point = dict(zip(grid, combo))
        if "min_size" in point:
            point["min_size"] = max(1, int(round(point["min_size"] * base.min_size)))
        if "seed_window" in point:
            point["seed_window"] = int(point["seed_window"])
        points.append(point)
    return points


def _distance(point: dict[str, Any], base: InferenceConfig) -> float:
    """How far a grid point moves the current values (ties go to the nearest)."""
    return sum(abs(float(v) - float(getattr(base, k))) / max(abs(float(getattr(base, k))), 1.0)
               for k, v in point.items())


def _search(base: InferenceConfig, grid: dict[str, tuple[Any, ...]], metrics: tuple[str, ...],
            data: list[tuple[AnnotatedSequence, list[Predictions]]], workdir: Path,
            table: list[dict[str, Any]], stage: str) -> tuple[InferenceConfig, float]:
    best: tuple[float, float, InferenceConfig] | None = None
    for point in _points(grid, base):
        config = base.replace(**point)
        scores = _score(config, data, metrics, workdir)
        total = sum(scores.values())
        table.append({"stage": stage, **point, **{m: round(s, 4) for m, s in scores.items()}})
        logger.info("%s %s: %s", stage, point, ", ".join(f"{m} {s:.3f}" for m, s in scores.items()))
        key = (round(total, 6), -_distance(point, base))
        if best is None or key > best[:2]:
            best = (*key, config)
    assert best is not None
    return best[2], best[0]


def calibrate(tracker: Tracker, sequences: list[AnnotatedSequence], metric: str = "seg+det+tra",
              cluster_grid: dict[str, tuple[Any, ...]] | None = None,
              link_grid: dict[str, tuple[Any, ...]] | None = None, scratch_beside: Path | None = None) -> Calibration:
    """Choose clustering (then linking) thresholds for ``tracker`` on annotated sequences; see the module doc.

    The results of the grid points are written to a scratch folder beside ``scratch_beside``, else in the
    system's temporary folder: a hidden temporary folder that the next run removes if this one is killed."""
    if metric not in METRICS:
        raise EmbedTrackError(f"unknown calibration metric {metric!r}; choose one of {', '.join(METRICS)}")
    if not sequences:
        raise EmbedTrackError("calibration needs at least one annotated sequence")
    data = [(seq, predict_once(tracker, seq.frames)) for seq in sequences]
    table: list[dict[str, Any]] = []
    with scratch_folder(scratch_beside) as workdir:
        config, score = _search(tracker.config, cluster_grid or CLUSTER_GRID, METRICS["seg+det"], data, workdir,
                                table, "cluster")
        if metric == "seg+det+tra":
            config, score = _search(config, link_grid or LINK_GRID, ("SEG", "DET", "TRA"), data, workdir, table,
                                    "link")
    keys = list(cluster_grid or CLUSTER_GRID) + (list(link_grid or LINK_GRID) if metric == "seg+det+tra" else [])
    best = {k: getattr(config, k) for k in keys}
    return Calibration(best, score, metric, table)
