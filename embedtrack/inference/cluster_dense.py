"""The per-pixel stage of the clustering (paper §3.3, steps 1–3 of :mod:`embedtrack.inference.cluster`) on NumPy arrays.

From the full maps it finds the foreground pixels, their shifted positions, the candidate centres in visiting
order and their kernel variances, and sorts the foreground pixels by the square bucket their shifted position
falls in. The result, :class:`Dense`, holds only foreground- and candidate-sized host arrays; the sequential loop
over the candidates (:func:`embedtrack.inference.cluster.cluster`) consumes it.
:mod:`embedtrack.inference.cluster_torch` is the same stage on torch tensors (any device) and gives bit-identical
results: every step is an integer operation, a comparison, or float64 arithmetic in the same order (the seediness window
is summed term by term, not with a running sum), and what could round differently between libraries (``exp``, the
median) runs here, on the host, for both (:func:`kernels`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedtrack.errors import EmbedTrackError
from embedtrack.models.inference_config import InferenceConfig

__all__ = ["Dense", "check_inputs", "dense_stage", "grid_shape", "kernels", "q_max", "window_mean", "window_sums",
           "NON_FINITE_OFFSETS"]

NON_FINITE_OFFSETS = "cluster: the offsets contain NaN or infinite values on foreground pixels"


@dataclass(frozen=True)
class Dense:
    """What the per-pixel stage hands to the candidate loop (host arrays).

    Foreground pixels are listed in *bucket order*: sorted (stably) by the ``bucket``-px square, row-major over
    the :func:`grid_shape` grid, that their shifted position falls in (positions outside the image count in the
    border squares); square ``b`` holds positions ``starts[b]:starts[b + 1]``.
    """

    shape: tuple[int, int]
    pixels: np.ndarray  # [n] int64: flat index (row * W + col) of each foreground pixel
    ey: np.ndarray  # [n] float64: shifted row, pixels
    ex: np.ndarray  # [n] float64: shifted column, pixels
    bucket: int  # side of a square, pixels
    starts: np.ndarray  # [n_squares + 1] int64
    seeds: np.ndarray  # [k] int64: positions (in bucket order) of the candidate centres, in visiting order
    var_y: np.ndarray  # [k] float64: kernel variance of each candidate along y, pixels^2
    var_x: np.ndarray  # [k] float64: same along x


def check_inputs(offsets: Any, bandwidths: Any, seediness: Any, scale: float) -> None:
    """Shapes of the three maps (NumPy arrays or tensors) and the coordinate scale."""
    if seediness.ndim != 2:
        raise EmbedTrackError(f"cluster: seediness must be 2-D (H, W), got shape {tuple(seediness.shape)}")
    expected = (2, *seediness.shape)
    for name, arr in (("offsets", offsets), ("bandwidths", bandwidths)):
        if tuple(arr.shape) != expected:
            raise EmbedTrackError(f"cluster: {name} must have shape {expected}, got {tuple(arr.shape)}")
    if not (math.isfinite(scale) and scale > 0):
        raise EmbedTrackError(f"cluster: scale must be a positive number of pixels per unit, got {scale}")


def q_max(params: InferenceConfig) -> float:
    """``d > kernel_threshold  <=>  dy^2 / var_y + dx^2 / var_x < q_max`` (variances in pixels^2)."""
    return math.log(1.0 / params.kernel_threshold)


def grid_shape(shape: tuple[int, int], bucket: int) -> tuple[int, int]:
    """Rows and columns of ``bucket``-px squares covering an image of ``shape``."""
    return -(-shape[0] // bucket), -(-shape[1] // bucket)


def kernels(means: np.ndarray, params: InferenceConfig) -> tuple[np.ndarray, np.ndarray, int]:
    """Kernel variances (pixels^2) of the candidates from their 3x3 mean bandwidths ``means`` [2, k], and the
    bucket side: twice the median kernel radius, within 8..128 px."""
    scale = params.coord_scale
    var_y = np.exp(params.w_s * means[0]) * scale**2
    var_x = np.exp(params.w_s * means[1]) * scale**2
    if not (np.isfinite(var_y).all() and np.isfinite(var_x).all()):
        raise EmbedTrackError("cluster: the bandwidths contain NaN or infinite values at candidate centres")
    radius = np.sqrt(np.maximum(var_y, var_x) * q_max(params))
    bucket = int(np.clip(np.ceil(2.0 * np.median(radius)), 8, 128))
    return var_y, var_x, bucket


def _float32_at_least(arr: np.ndarray) -> np.ndarray:
    """Maps below float32 (half) are promoted, as the torch stage does."""
    return arr.astype(np.float32) if arr.dtype.kind == "f" and arr.dtype.itemsize < 4 else arr


def window_sums(padded: Any, shape: tuple[int, int], size: int) -> Any:
    """Sums over the ``size`` x ``size`` windows of a padded map (NumPy array or tensor; ``size - 1`` extra rows
    and columns) giving a ``shape`` result: the terms are added one at a time in a fixed order (rows first,
    then columns), so that NumPy and torch round alike."""
    h, w = shape
    rows = padded[0:h]
    for d in range(1, size):
        rows = rows + padded[d : d + h]
    total = rows[:, 0:w]
    for d in range(1, size):
        total = total + rows[:, d : d + w]
    return total


def window_mean(seediness: np.ndarray, size: int) -> np.ndarray:
    """Mean over the ``size`` x ``size`` window of every pixel (edges replicated, the window reaching
    ``size // 2`` px up and left), summed in float64 and returned as float32."""
    lo, hi = size // 2, size - 1 - size // 2
    padded = np.pad(seediness.astype(np.float64), ((lo, hi), (lo, hi)), mode="edge")
    return (window_sums(padded, seediness.shape, size) / float(size * size)).astype(np.float32)


def _mean3_at(maps: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """3x3 mean of the two channels of ``maps`` [2, H, W] (edges replicated) at the given pixels, float64."""
    h, w = maps.shape[1:]
    total = np.zeros((2, rows.size), dtype=np.float64)
    for dr in (-1, 0, 1):
        rr = np.clip(rows + dr, 0, h - 1)
        for dc in (-1, 0, 1):
            total += maps[:, rr, np.clip(cols + dc, 0, w - 1)]
    return total / 9.0


def _bucket_order(ey: np.ndarray, ex: np.ndarray, shape: tuple[int, int], bucket: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Stable order of the pixels by bucket, and the bucket starts (see :class:`Dense`)."""
    nby, nbx = grid_shape(shape, bucket)
    by = np.clip(np.floor(ey / bucket), 0, nby - 1).astype(np.int64)
    bx = np.clip(np.floor(ex / bucket), 0, nbx - 1).astype(np.int64)
    key = by * nbx + bx
    starts = np.zeros(nby * nbx + 1, dtype=np.int64)
    np.cumsum(np.bincount(key, minlength=nby * nbx), out=starts[1:])
    return np.argsort(key, kind="stable"), starts


def _candidates(ey: np.ndarray, ex: np.ndarray, fg_mask: np.ndarray, min_votes: int) -> np.ndarray:
    """Flat indices (ascending) of the foreground pixels with more than ``min_votes`` votes around them; every
    foreground pixel votes at the pixel nearest to its shifted position (votes outside the image are dropped)."""
    h, w = fg_mask.shape
    vy = np.rint(ey).astype(np.int64)
    vx = np.rint(ex).astype(np.int64)
    inside = (vy >= 0) & (vy < h) & (vx >= 0) & (vx < w)
    counts = np.bincount(vy[inside] * w + vx[inside], minlength=h * w).astype(np.int32).reshape(h, w)
    return np.flatnonzero((window_sums(np.pad(counts, 1), (h, w), 3) > min_votes) & fg_mask)


def dense_stage(offsets: np.ndarray, bandwidths: np.ndarray, seediness: np.ndarray,
                params: InferenceConfig) -> Dense | None:
    """The per-pixel stage on NumPy arrays; ``None`` when there is no foreground or no candidate centre."""
    offsets, bandwidths, seediness = (_float32_at_least(a) for a in (offsets, bandwidths, seediness))
    h, w = seediness.shape
    if params.seed_window > 1:
        seediness = window_mean(seediness, params.seed_window)
    fg_mask = seediness > params.seed_threshold
    fg_idx = np.flatnonzero(fg_mask)
    if fg_idx.size == 0:
        return None
    rows, cols = np.divmod(fg_idx, w)
    # Shifted positions in pixel units: e * scale = (row, col) + offset * scale.
    ey = rows + offsets[0].reshape(-1)[fg_idx].astype(np.float64) * params.coord_scale
    ex = cols + offsets[1].reshape(-1)[fg_idx].astype(np.float64) * params.coord_scale
    if not (np.isfinite(ey).all() and np.isfinite(ex).all()):
        raise EmbedTrackError(NON_FINITE_OFFSETS)
    cand = _candidates(ey, ex, fg_mask, params.min_votes)
    if cand.size == 0:
        return None
    cand = cand[np.argsort(-seediness.reshape(-1)[cand], kind="stable")]  # ties: row-major
    var_y, var_x, bucket = kernels(_mean3_at(bandwidths, *np.divmod(cand, w)), params)
    order, starts = _bucket_order(ey, ex, (h, w), bucket)
    position = np.empty_like(order)
    position[order] = np.arange(order.size)
    seeds = position[np.searchsorted(fg_idx, cand)]
    return Dense((h, w), fg_idx[order], ey[order], ex[order], bucket, starts, seeds, var_y, var_x)
