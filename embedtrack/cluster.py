"""Pixel clustering of the segmentation predictions into instance masks (paper §3.3).

The network predicts, per pixel ``i``, an offset ``o_i`` (2 channels, normalised units), a clustering bandwidth
``b_i`` (2 channels, sigmoid output) and a seediness score ``D_i``. Conventions:

* channel 0 is y (rows), channel 1 is x (columns);
* the position of pixel ``(row, col)`` is ``p_i = (row, col) / scale`` where ``scale`` (pixels per normalised unit)
  is fixed by the model configuration, not by the image size; the shifted position is ``e_i = p_i + o_i``;
* the kernel between a centre ``j`` and a pixel ``i`` is
  ``d_ji = exp(-(e_jy - e_iy)^2 / s_jy - (e_jx - e_ix)^2 / s_jx)`` with ``s_j = exp(w_s * b_smooth_j)``.

Algorithm (paper §3.3, with the choices this module makes written out):

1. ``b_smooth`` is the 3x3 mean of the bandwidths (edges replicated); it is only evaluated at candidate centres.
2. With ``seed_window > 1`` the seediness is first averaged over that square (edges replicated, as for the
   bandwidths), which smooths the outlines (1-px spurs and fringes of the map go); 1, the default, is the
   paper's raw map. Foreground = pixels with seediness ``> seed_threshold``.
3. Every foreground pixel votes at the pixel nearest to its shifted position (votes outside the image are
   dropped); candidate centres are foreground pixels with ``> min_votes`` votes in their 3x3 neighbourhood,
   visited by decreasing seediness (ties: row-major order).
4. For a candidate ``j`` that is not yet part of an instance, the centre starts at its shifted position and
   moves to the mean shifted position of the foreground pixels with ``d_ji > kernel_threshold``, at most
   ``refine_steps`` times (stopping when it moves less than 0.1 px; 0 keeps the paper's rule). Training fits
   one centre per cell to all of its pixels, so when a cell's shifted positions are spread (textures the
   network has not seen) the mean is the better estimate; a seed at the edge of the spread would otherwise
   gather part of the cell and leave the rest to a second instance. The proposal is every foreground pixel
   with ``d_ji > kernel_threshold`` around the final centre. With ``merge_reach > 0``, a candidate whose centre
   lies within ``merge_reach`` kernel radii of an earlier instance's centre founds no instance: its unassigned
   proposal pixels join that instance. Otherwise, of the proposal, the pixels *taken* are the unassigned ones
   and those whose kernel to ``j`` is strictly higher than to the centre they belong to. The instance is
   created only when ``|taken| >= min_size`` and fewer than half of the taken pixels were already assigned;
   otherwise nothing changes (the candidate is simply skipped; its pixel may still join a later instance).
5. Instances that end up below ``min_size`` (pixels taken by later instances) are removed, and the labels are
   renumbered densely ``1..n`` in creation order. Disconnected pieces of one instance are not split.

Everything except the loop over candidate centres is vectorised. Each centre only looks at the foreground pixels
whose shifted position lies in the box where its kernel can exceed the threshold (half-widths
``sqrt(s_j * ln(1/threshold)) * scale`` pixels): the pixels are sorted once by the square bucket their shifted
position falls in, so that the box is a handful of contiguous slices.
"""

from __future__ import annotations

import logging
import math
import numpy as np
from scipy import ndimage as ndi

from embedtrack.errors import EmbedTrackError
from embedtrack.inference_config import InferenceConfig
from embedtrack.predictions import Predictions

logger = logging.getLogger(__name__)

__all__ = ["cluster"]


def _check_inputs(offsets: np.ndarray, bandwidths: np.ndarray, seediness: np.ndarray, scale: float) -> None:
    if seediness.ndim != 2:
        raise EmbedTrackError(f"cluster: seediness must be 2-D (H, W), got shape {seediness.shape}")
    expected = (2, *seediness.shape)
    for name, arr in (("offsets", offsets), ("bandwidths", bandwidths)):
        if arr.shape != expected:
            raise EmbedTrackError(f"cluster: {name} must have shape {expected}, got {arr.shape}")
    if not (math.isfinite(scale) and scale > 0):
        raise EmbedTrackError(f"cluster: scale must be a positive number of pixels per unit, got {scale}")


def _box_sum3(counts: np.ndarray) -> np.ndarray:
    """Sum over the 3x3 neighbourhood of every pixel (zeros outside the image)."""
    padded = np.pad(counts, 1)
    rows = padded[:-2] + padded[1:-1] + padded[2:]
    return rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]


def _mean3_at(channel: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """3x3 mean of ``channel`` (edges replicated) evaluated only at the given pixels."""
    h, w = channel.shape
    total = np.zeros(rows.shape, dtype=np.float64)
    for dr in (-1, 0, 1):
        rr = np.clip(rows + dr, 0, h - 1)
        for dc in (-1, 0, 1):
            total += channel[rr, np.clip(cols + dc, 0, w - 1)]
    return total / 9.0


class _BucketGrid:
    """Foreground pixels sorted by the square bucket (``size`` px) their shifted position falls in."""

    def __init__(self, ey: np.ndarray, ex: np.ndarray, shape: tuple[int, int], size: int) -> None:
        self.size = size
        self.nby = -(-shape[0] // size)
        self.nbx = -(-shape[1] // size)
        # Positions outside the image go to the border buckets; boxes are clipped the same way, so a box that
        # reaches beyond the border still contains them (membership is decided by the exact kernel later).
        by = np.clip(np.floor(ey / size), 0, self.nby - 1).astype(np.int64)
        bx = np.clip(np.floor(ex / size), 0, self.nbx - 1).astype(np.int64)
        key = by * self.nbx + bx
        self.order = np.argsort(key, kind="stable")
        self.starts = np.zeros(self.nby * self.nbx + 1, dtype=np.int64)
        np.cumsum(np.bincount(key, minlength=self.nby * self.nbx), out=self.starts[1:])

    def box(self, y0: float, y1: float, x0: float, x1: float) -> list[tuple[int, int]]:
        """Index ranges (in sorted order) of the buckets overlapping the pixel box ``[y0, y1] x [x0, x1]``."""
        s = self.size
        by0 = min(max(int(math.floor(y0 / s)), 0), self.nby - 1)
        by1 = min(max(int(math.floor(y1 / s)), 0), self.nby - 1)
        bx0 = min(max(int(math.floor(x0 / s)), 0), self.nbx - 1)
        bx1 = min(max(int(math.floor(x1 / s)), 0), self.nbx - 1)
        ranges: list[tuple[int, int]] = []
        for by in range(by0, by1 + 1):
            lo = int(self.starts[by * self.nbx + bx0])
            hi = int(self.starts[by * self.nbx + bx1 + 1])
            if hi > lo:
                ranges.append((lo, hi))
        return ranges


def _gather(grid: _BucketGrid, sey: np.ndarray, sex: np.ndarray, centre: tuple[float, float],
            var: tuple[float, float], q_max: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """Sorted-order indices of the pixels whose kernel to ``centre`` exceeds the threshold, their ``q``, and the
    mean of their shifted positions (the centre itself when there are none)."""
    cy, cx = centre
    ry, rx = math.sqrt(var[0] * q_max), math.sqrt(var[1] * q_max)
    ranges = grid.box(cy - ry, cy + ry, cx - rx, cx + rx)
    if not ranges:
        return np.zeros(0, dtype=np.int64), np.zeros(0), cy, cx
    idx = np.arange(*ranges[0]) if len(ranges) == 1 else np.concatenate([np.arange(lo, hi) for lo, hi in ranges])
    dy = sey[idx] - cy
    dx = sex[idx] - cx
    q = dy * dy / var[0] + dx * dx / var[1]
    inside = q < q_max
    n = int(np.count_nonzero(inside))
    if n == 0:
        return idx[inside], q[inside], cy, cx
    return idx[inside], q[inside], cy + float(dy[inside].sum()) / n, cx + float(dx[inside].sum()) / n


def _settle(grid: _BucketGrid, sey: np.ndarray, sex: np.ndarray, centre: tuple[float, float],
            var: tuple[float, float], q_max: float, steps: int
            ) -> tuple[tuple[float, float], np.ndarray, np.ndarray]:
    """Move ``centre`` to the mean shifted position of the pixels it gathers, ``steps`` times at most (it stops
    once it moves less than 0.1 px). Training fits one centre per cell to all of the cell's pixels, so the
    mean is a better estimate of it than any single seed's shifted position when the embeddings are spread."""
    idx, q, my, mx = _gather(grid, sey, sex, centre, var, q_max)
    for _ in range(steps):
        if idx.size == 0 or abs(my - centre[0]) + abs(mx - centre[1]) < 0.1:
            break
        centre = (my, mx)
        idx, q, my, mx = _gather(grid, sey, sex, centre, var, q_max)
    return centre, idx, q


class _Centres:
    """Centres and kernel variances of the instances made so far, looked up through a coarse grid."""

    def __init__(self, cell: float) -> None:
        self.cell = cell
        self.pos: list[tuple[float, float]] = []
        self.var: list[tuple[float, float]] = []
        self.grid: dict[tuple[int, int], list[int]] = {}

    def add(self, centre: tuple[float, float], var: tuple[float, float]) -> None:
        key = (int(centre[0] // self.cell), int(centre[1] // self.cell))
        self.grid.setdefault(key, []).append(len(self.pos))
        self.pos.append(centre)
        self.var.append(var)

    def q(self, i: int, ey: np.ndarray | float, ex: np.ndarray | float) -> np.ndarray | float:
        (cy, cx), (vy, vx) = self.pos[i], self.var[i]
        return (ey - cy) ** 2 / vy + (ex - cx) ** 2 / vx

    def nearest(self, centre: tuple[float, float], q_limit: float) -> int:
        """Index of the centre with the smallest ``q`` to ``centre`` below ``q_limit`` (searched in the 3x3
        grid cells around it, which is enough while ``cell`` covers the reach), or -1."""
        by, bx = int(centre[0] // self.cell), int(centre[1] // self.cell)
        best, best_i = q_limit, -1
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                for i in self.grid.get((by + dy, bx + dx), ()):
                    qi = float(self.q(i, centre[0], centre[1]))
                    if qi < best:
                        best, best_i = qi, i
        return best_i


def cluster(pred: Predictions, config: InferenceConfig | None = None) -> np.ndarray:
    """Cluster foreground pixels into instances (paper §3.3); see the module docstring for the exact rules.

    Args:
        pred: the frame's predictions; ``offsets`` [2, H, W] in normalised units (channel 0 = y, 1 = x),
            ``bandwidths`` [2, H, W] (sigmoid outputs, before ``exp(w_s * .)``), ``seediness`` [H, W].
        config: thresholds, minimum size, ``w_s`` and ``coord_scale`` (pixels per normalised unit);
            defaults to :class:`InferenceConfig()`.

    Returns:
        ``[H, W]`` int32 label image, 0 = background, instances ``1..n`` dense.

    Raises:
        EmbedTrackError: wrong shapes or non-finite predictions on foreground pixels.
    """
    params = config or InferenceConfig()
    scale = params.coord_scale
    offsets = np.asarray(pred.offsets)
    bandwidths = np.asarray(pred.bandwidths)
    seediness = np.asarray(pred.seediness)
    _check_inputs(offsets, bandwidths, seediness, scale)
    h, w = seediness.shape
    labels = np.zeros((h, w), dtype=np.int32)
    if params.seed_window > 1:
        seediness = ndi.uniform_filter(seediness.astype(np.float32), params.seed_window, mode="nearest")

    fg_mask = seediness > params.seed_threshold
    fg_idx = np.flatnonzero(fg_mask)
    if fg_idx.size == 0:
        return labels
    rows, cols = np.divmod(fg_idx, w)
    # Shifted positions in pixel units: e * scale = (row, col) + offset * scale.
    ey = rows + offsets[0].reshape(-1)[fg_idx].astype(np.float64) * scale
    ex = cols + offsets[1].reshape(-1)[fg_idx].astype(np.float64) * scale
    if not (np.isfinite(ey).all() and np.isfinite(ex).all()):
        raise EmbedTrackError("cluster: the offsets contain NaN or infinite values on foreground pixels")

    # Votes on the pixel grid, then candidate centres: foreground pixels with > min_votes votes around them.
    vy = np.rint(ey).astype(np.int64)
    vx = np.rint(ex).astype(np.int64)
    inside = (vy >= 0) & (vy < h) & (vx >= 0) & (vx < w)
    counts = np.bincount(vy[inside] * w + vx[inside], minlength=h * w).astype(np.int32).reshape(h, w)
    cand_flat = np.flatnonzero(_box_sum3(counts) > params.min_votes)
    cand_flat = cand_flat[fg_mask.reshape(-1)[cand_flat]]
    if cand_flat.size == 0:
        return labels
    cand_flat = cand_flat[np.argsort(-seediness.reshape(-1)[cand_flat], kind="stable")]
    cand_fg = np.searchsorted(fg_idx, cand_flat)  # position among the foreground pixels

    # Kernel of each candidate in pixel units: d > t  <=>  dy^2 / vy + dx^2 / vx < ln(1 / t), v = s * scale^2.
    c_rows, c_cols = np.divmod(cand_flat, w)
    var_y = np.exp(params.w_s * _mean3_at(bandwidths[0], c_rows, c_cols)) * scale**2
    var_x = np.exp(params.w_s * _mean3_at(bandwidths[1], c_rows, c_cols)) * scale**2
    if not (np.isfinite(var_y).all() and np.isfinite(var_x).all()):
        raise EmbedTrackError("cluster: the bandwidths contain NaN or infinite values at candidate centres")
    q_max = math.log(1.0 / params.kernel_threshold)
    rad_y = np.sqrt(var_y * q_max)
    rad_x = np.sqrt(var_x * q_max)

    bucket = int(np.clip(np.ceil(2.0 * np.median(np.maximum(rad_y, rad_x))), 8, 128))
    grid = _BucketGrid(ey, ex, (h, w), bucket)
    inv = np.empty_like(grid.order)
    inv[grid.order] = np.arange(grid.order.size)
    sey = ey[grid.order]
    sex = ex[grid.order]
    # All per-pixel state lives in bucket-sorted order; 0 = unassigned.
    lab = np.zeros(fg_idx.size, dtype=np.int32)
    best_q = np.full(fg_idx.size, np.inf)
    next_label = 1
    half = 0.5
    reach_q = params.merge_reach**2 * q_max
    centres = _Centres(max(float(np.max(np.maximum(rad_y, rad_x))) * params.merge_reach, 1.0))

    for k, c in enumerate(inv[cand_fg]):
        if lab[c]:
            continue  # candidate already absorbed by an instance
        var = (float(var_y[k]), float(var_x[k]))
        centre, idx, q = _settle(grid, sey, sex, (float(sey[c]), float(sex[c])), var, q_max, params.refine_steps)
        if reach_q and (near := centres.nearest(centre, reach_q)) >= 0:
            free = idx[lab[idx] == 0]
            lab[free] = near + 1
            best_q[free] = centres.q(near, sey[free], sex[free])
            continue
        assigned = lab[idx] > 0
        take = ~assigned | (q < best_q[idx])
        n_take = int(take.sum())
        if n_take == 0 or n_take < params.min_size:
            continue
        if int((take & assigned).sum()) >= half * n_take:
            continue
        taken = idx[take]
        lab[taken] = next_label
        best_q[taken] = q[take]
        if reach_q:
            centres.add(centre, var)
        next_label += 1

    if next_label == 1:
        return labels
    # Drop instances that shrank below the minimum size and renumber densely in creation order.
    sizes = np.bincount(lab, minlength=next_label)
    keep = sizes >= max(params.min_size, 1)
    keep[0] = False
    lut = np.zeros(next_label, dtype=np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    labels.reshape(-1)[fg_idx[grid.order]] = lut[lab]
    logger.debug("cluster: %d candidates, %d instances kept of %d", cand_flat.size, int(keep.sum()), next_label - 1)
    return labels
