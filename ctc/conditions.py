"""Imaging conditions of a sequence, measured on its labelled cells: signal-to-noise and cell size.

Sequences of one CTC dataset differ mainly in two ways that a network trained on one of them does not see:
how far the cells stand out of the camera noise, and how large they are. Both are measured here on ground truth
(or any instance masks), in the raw frame's own units, so that a model can record the conditions it was trained
at and a benchmark can degrade frames to a chosen condition with exact ground truth.

* **Body SNR** of a cell: its mean intensity minus the background's median, in units of the background's
  standard deviation (estimated robustly, 1.4826 x the median absolute deviation; the plain standard deviation
  where most background pixels share one value and that is zero). The background is every
  pixel farther than ``margin`` pixels from any labelled cell, so halos and unlabelled cell edges stay out.
* **Diameter** of a cell: the diameter of the disc of the same area, ``2 sqrt(area / pi)``.

Pure numpy, no torch: the CTC layer and the benchmarks use it as well as the models.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import numpy as np
from scipy import ndimage

MAD_TO_STD = 1.4826


@dataclass(frozen=True)
class Conditions:
    """Summary of a sequence's cells: median and 10th percentile of the body SNR, median and 90th percentile
    of the cell diameter (pixels), the background noise (raw units), and how many cells were measured."""

    snr_median: float
    snr_p10: float
    diameter_median: float
    diameter_p90: float
    noise: float
    cells: int

    def to_dict(self) -> dict[str, float]:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def background(labels: np.ndarray, margin: int = 3) -> np.ndarray:
    """Pixels farther than ``margin`` pixels from any labelled (non-zero) pixel."""
    cells = labels != 0
    if margin > 0 and cells.any():
        cells = ndimage.binary_dilation(cells, iterations=margin)
    return ~cells


def background_stats(frame: np.ndarray, labels: np.ndarray, margin: int = 3) -> tuple[float, float]:
    """Median and robust standard deviation of the background of ``frame`` (raw units); NaN when empty."""
    values = np.asarray(frame, np.float64)[background(labels, margin)]
    if values.size == 0:
        return float("nan"), float("nan")
    median = float(np.median(values))
    spread = MAD_TO_STD * float(np.median(np.abs(values - median)))
    if spread <= 0.0:  # a quantised background (most pixels one value): the plain standard deviation
        spread = float(np.std(values))
    return median, spread


def body_snr(frame: np.ndarray, labels: np.ndarray, margin: int = 3) -> np.ndarray:
    """Body SNR of every labelled cell of one frame, in the order of the sorted label values (module doc)."""
    frame = np.asarray(frame, np.float64)
    ids = np.unique(labels[labels != 0])
    median, std = background_stats(frame, labels, margin)
    if ids.size == 0 or not np.isfinite(std):
        return np.zeros(0)
    means = ndimage.mean(frame, labels, ids)
    return (np.asarray(means) - median) / max(std, 1e-12)


def cell_diameters(labels: np.ndarray) -> np.ndarray:
    """Equivalent-disc diameter (pixels) of every labelled cell of one frame, in sorted label order."""
    ids, areas = np.unique(labels[labels != 0], return_counts=True)
    return 2.0 * np.sqrt(areas / np.pi) if ids.size else np.zeros(0)


def measure(pairs: Iterable[tuple[np.ndarray, np.ndarray]], margin: int = 3) -> Conditions | None:
    """The :class:`Conditions` of (raw frame, instance mask) pairs; None when no cell is labelled."""
    snrs, diameters, noises = [], [], []
    for frame, labels in pairs:
        labels = np.asarray(labels)
        if not (labels != 0).any():
            continue
        snrs.append(body_snr(frame, labels, margin))
        diameters.append(cell_diameters(labels))
        noises.append(background_stats(frame, labels, margin)[1])
    if not snrs:
        return None
    snr, diameter = np.concatenate(snrs), np.concatenate(diameters)
    return Conditions(snr_median=float(np.median(snr)), snr_p10=float(np.percentile(snr, 10)),
                      diameter_median=float(np.median(diameter)), diameter_p90=float(np.percentile(diameter, 90)),
                      noise=float(np.nanmedian(noises)), cells=int(snr.size))
