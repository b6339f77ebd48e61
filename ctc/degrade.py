"""Degraded copies of a CTC dataset with exact ground truth: more camera noise, or cells of another size.

Sequences of one dataset differ in how far the cells stand out of the noise and in how large they are
(:mod:`ctc.conditions`); a model trained on one sequence meets the others' conditions only at test time. These
functions make such conditions from frames that have ground truth, so that the degraded copy can be scored:

* **Noise to a body SNR.** Zero-mean Gaussian noise of one standard deviation for the whole sequence (one
  camera), independent of the signal, is added to the raw frames, so the cells' mean intensities are kept and
  only the background spread grows. The standard deviation is searched (bisection on a fixed noise field, so the
  measured SNR is a monotone function of it) until the median body SNR of :func:`ctc.conditions.measure` on the
  labelled cells is within ``rtol`` of the target. Frames become float32 (no clipping: nothing is lost at
  zero or at the top of the original pixel type). The ground truth is unchanged.
* **Rescaling.** Frames are resampled with linear interpolation, label images (SEG and TRA) with nearest
  neighbour, both on pixel centres at the new shape ``round(size x factor)``. A label that nearest neighbour
  drops (a marker smaller than the sampling step) is put back as one pixel where its most central pixel lands,
  so every track keeps every frame and ``man_track.txt`` stays valid unchanged.

Pure numpy/scipy on arrays; :func:`write_condition` applies them to a CTC dataset folder on disk.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from scipy import ndimage

from ctc.conditions import measure
from ctc.errors import CTCFormatError
from ctc.guard import CTC_DATASET
from ctc.io import TRACK_FILE_GT, Sequence as Frames, open_sequence, write_tiff
from ctc.labels import label_set
from ctc.rules import errors_only
from ctc.validate import validate_result
from ctc.writer import copy_into, staged_folder

NOISE_SEARCH_STEPS = 60


def unit_noise(shape: tuple[int, ...], seed: int, index: int) -> np.ndarray:
    """A standard normal float32 field for frame ``index`` of a sequence degraded with ``seed``."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, index]))
    return rng.standard_normal(shape, dtype=np.float32)


def add_noise(frame: np.ndarray, sigma: float, unit: np.ndarray) -> np.ndarray:
    """``frame + sigma * unit`` as float32 (``unit``: :func:`unit_noise` of the frame's shape)."""
    return (np.asarray(frame, np.float32) + np.float32(sigma) * unit).astype(np.float32)


def _snr(frames: Sequence[np.ndarray], labels: Sequence[np.ndarray], units: Sequence[np.ndarray],
         sigma: float, margin: int) -> float:
    found = measure(((add_noise(f, sigma, u), m) for f, m, u in zip(frames, labels, units)), margin)
    if found is None:
        raise ValueError("no labelled cell to measure the body SNR on")
    return found.snr_median


def noise_for_snr(frames: Sequence[np.ndarray], labels: Sequence[np.ndarray], target: float, seed: int = 0,
                  indices: Sequence[int] | None = None, rtol: float = 0.02,
                  margin: int = 3) -> tuple[float, float] | None:
    """The noise standard deviation (raw units) that brings the median body SNR of ``frames`` (cells:
    ``labels``) to ``target``, with the SNR it reaches; None when the frames are already at or below it.

    The noise of the frame at position ``k`` of its sequence (``indices[i]`` for ``frames[i]``; default ``i``) is
    ``sigma * unit_noise(shape, seed, k)``. Raises ValueError when no cell is labelled or the target is not
    positive.
    """
    if not target > 0:
        raise ValueError(f"target SNR must be positive, got {target}")
    indices = range(len(frames)) if indices is None else indices
    units = [unit_noise(np.shape(f), seed, k) for k, f in zip(indices, frames)]
    clean = _snr(frames, labels, units, 0.0, margin)
    if clean <= target * (1.0 + rtol):
        return None
    noise = measure(zip(frames, labels), margin)
    guess = (noise.noise if noise and noise.noise > 0 else 1.0) * math.sqrt((clean / target) ** 2 - 1.0)
    low, high = 0.0, max(guess, 1e-6)
    while _snr(frames, labels, units, high, margin) > target:
        low, high = high, 2.0 * high
    for _ in range(NOISE_SEARCH_STEPS):
        sigma = 0.5 * (low + high)
        reached = _snr(frames, labels, units, sigma, margin)
        if abs(reached - target) <= rtol * target:
            return sigma, reached
        low, high = (sigma, high) if reached > target else (low, sigma)
    raise ValueError(f"no noise level reaches body SNR {target} within {rtol:.0%} (last {reached:.3f})")


def scaled_shape(shape: tuple[int, ...], factor: float) -> tuple[int, int]:
    """``round(size x factor)`` per axis, at least 1 pixel."""
    if not factor > 0:
        raise ValueError(f"scale factor must be positive, got {factor}")
    return tuple(max(1, int(round(n * factor))) for n in shape[:2])  # type: ignore[return-value]


def _source_coords(n_out: int, n_in: int) -> np.ndarray:
    """Input coordinates of the output pixel centres (pixel centres aligned, as image resampling does)."""
    return (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5


def rescale_frame(frame: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``frame`` resampled to ``shape`` with linear interpolation, float32."""
    frame = np.asarray(frame, np.float32)
    rows, cols = (_source_coords(o, i) for o, i in zip(shape, frame.shape))
    grid = np.meshgrid(rows, cols, indexing="ij")
    return ndimage.map_coordinates(frame, grid, order=1, mode="nearest").astype(np.float32)


def _nearest_index(n_out: int, n_in: int) -> np.ndarray:
    return np.clip(np.floor(_source_coords(n_out, n_in) + 0.5).astype(np.int64), 0, n_in - 1)


def _central_pixel(labels: np.ndarray, label: int) -> tuple[int, int]:
    """The pixel of ``label`` nearest to its centroid (inside the object even when it is not convex)."""
    ys, xs = np.nonzero(labels == label)
    k = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
    return int(ys[k]), int(xs[k])


def _restore(out: np.ndarray, label: int, where: tuple[int, int]) -> None:
    """Put ``label`` on one pixel at or near ``where``: a background pixel, else one of a label that keeps
    other pixels. Raises ValueError when every pixel within 3 of it is the last of its label."""
    values, sizes = np.unique(out, return_counts=True)
    counts = {int(v): int(n) for v, n in zip(values, sizes)}
    y0, x0 = where
    near = sorted(((dy * dy + dx * dx, y0 + dy, x0 + dx) for dy in range(-3, 4) for dx in range(-3, 4)
                   if 0 <= y0 + dy < out.shape[0] and 0 <= x0 + dx < out.shape[1]))
    for _, y, x in near:
        owner = int(out[y, x])
        if owner == 0 or counts[owner] > 1:
            out[y, x] = label
            return
    raise ValueError(f"label {label}: no pixel near {where} to put it back at this scale")


def rescale_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Label image resampled to ``shape`` with nearest neighbour; every label of ``labels`` is kept (a dropped one
    comes back as one pixel where its most central pixel lands)."""
    labels = np.asarray(labels)
    rows, cols = (_nearest_index(o, i) for o, i in zip(shape, labels.shape))
    out = labels[np.ix_(rows, cols)].copy()
    lost = np.setdiff1d(np.unique(labels), np.unique(out))
    for label in lost[lost != 0]:
        y, x = _central_pixel(labels, int(label))
        ty = min(int((y + 0.5) * shape[0] / labels.shape[0]), shape[0] - 1)
        tx = min(int((x + 0.5) * shape[1] / labels.shape[1]), shape[1] - 1)
        _restore(out, int(label), (ty, tx))
    return out


FrameFn = Callable[[int, np.ndarray], np.ndarray]
LabelFn = Callable[[np.ndarray], np.ndarray]


def write_condition(dataset: str | Path, sequence: str, out_dir: str | Path, frame_fn: FrameFn,
                    label_fn: LabelFn | None = None) -> Path:
    """A copy of ``dataset/sequence`` and its ``<sequence>_GT`` as ``out_dir``, raw frame ``k`` (position in the
    sequence) replaced by ``frame_fn(k, frame)`` and every SEG / TRA mask by ``label_fn(mask)`` (unchanged when
    None); ``man_track.txt`` is copied unchanged. Staged beside ``out_dir`` and renamed into place (:func:`ctc.writer.staged_folder`)."""
    dataset, out_dir = Path(dataset), Path(out_dir)
    if out_dir.exists():
        raise CTCFormatError(f"{out_dir}: exists; choose a new folder for the degraded copy")
    raw, gt = open_sequence(dataset / sequence), dataset / f"{sequence}_GT"
    with staged_folder(out_dir, CTC_DATASET, inputs=[dataset]) as staging:
        (staging / sequence).mkdir(parents=True)
        for k, (file, frame) in enumerate(zip(raw.files, raw)):
            write_tiff(staging / sequence / file.name, frame_fn(k, frame))
        for part in ("SEG", "TRA"):
            _copy_masks(gt / part, staging / f"{sequence}_GT" / part, label_fn)
        copy_into(gt / "TRA" / TRACK_FILE_GT, staging / f"{sequence}_GT" / "TRA" / TRACK_FILE_GT)
    return out_dir


def _masks(folder: Path) -> Frames:
    """The mask files of a ``<SEQ>_GT/SEG`` or ``<SEQ>_GT/TRA`` folder, opened by the one opener."""
    return open_sequence(folder, "man_seg" if folder.name == "SEG" else "man_track", allow_gaps=True, labels=True)


def _copy_masks(source: Path, target: Path, label_fn: LabelFn | None) -> None:
    if not source.is_dir():
        return
    target.mkdir(parents=True)
    masks = _masks(source)
    for k, file in enumerate(masks.files):
        if label_fn is None:
            copy_into(file, target / file.name)
        else:
            write_tiff(target / file.name, label_fn(masks.read(k)))


def ground_truth_problems(original: str | Path, copy: str | Path, shape: tuple[int, int]) -> list[str]:
    """What makes ``copy`` (a ``<SEQ>_GT`` folder made by :func:`write_condition`) not the ground truth of
    ``original`` at frame shape ``shape``: a CTC rule broken by its TRA folder (:func:`ctc.validate.validate_result`),
    a mask of another shape, a missing mask file or a label set that differs from the original's. Empty: valid."""
    original, copy = Path(original), Path(copy)
    problems = [f"{copy / 'TRA' / TRACK_FILE_GT}: {v}" for v in errors_only(validate_result(copy / "TRA"))]
    for part in ("SEG", "TRA"):
        if not (original / part).is_dir():
            continue
        masks = _masks(original / part)
        twins = _masks(copy / part) if (copy / part).is_dir() else None
        names = {f.name: k for k, f in enumerate(twins.files)} if twins is not None else {}
        for k, file in enumerate(masks.files):
            twin = copy / part / file.name
            if file.name not in names:
                problems.append(f"{twin}: missing")
                continue
            labels = twins.read(names[file.name])  # type: ignore[union-attr]
            if labels.shape != tuple(shape):
                problems.append(f"{twin}: shape {labels.shape}, expected {tuple(shape)}")
            differ = set(label_set(masks.read(k)).tolist()) ^ set(label_set(labels).tolist())
            if differ:
                problems.append(f"{twin}: labels {sorted(differ)[:5]} differ from {file}")
    return problems
