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
   bandwidths; an even window reaches ``seed_window // 2`` px up and left; summed in float64, then rounded to
   float32), which smooths the outlines (1-px spurs and fringes of the map go); 1, the default, is the paper's
   raw map. Foreground = pixels with seediness ``> seed_threshold``. Maps below float32 are promoted to it.
3. Every foreground pixel votes at the pixel nearest to its shifted position (halves rounded to even; votes
   outside the image are dropped); candidate centres are foreground pixels with ``> min_votes`` votes in their
   3x3 neighbourhood, visited by decreasing seediness (ties: row-major order).
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

Steps 1–3 and the sorting below are the per-pixel (*dense*) stage, vectorised: in NumPy
(:mod:`embedtrack.inference.cluster_dense`) for arrays, in torch on the tensors' device
(:mod:`embedtrack.inference.cluster_torch`) for tensors, so that on a GPU only foreground- and candidate-sized arrays
come to the host. Both hand the same
:class:`~embedtrack.inference.cluster_dense.Dense` record, bit for bit, to the one loop over the candidate centres
(steps 4–5, NumPy on the host: it is sequential, and latency-bound on a device). Each centre only looks at the
foreground pixels whose shifted position lies in the box where its kernel can exceed the threshold (half-widths
``sqrt(s_j * ln(1/threshold)) * scale`` pixels): the pixels are sorted once by the square bucket their shifted
position falls in, so that the box is a handful of contiguous slices.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from embedtrack.inference.cluster_dense import Dense, check_inputs, dense_stage, grid_shape, q_max
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.models.predictions import Predictions, is_tensor

logger = logging.getLogger(__name__)

__all__ = ["cluster", "labels_from"]


class _BucketGrid:
    """Foreground pixels sorted by the square bucket (``size`` px) their shifted position falls in."""

    def __init__(self, dense: Dense) -> None:
        self.size = dense.bucket
        self.nby, self.nbx = grid_shape(dense.shape, dense.bucket)
        # Positions outside the image are in the border buckets; boxes are clipped the same way, so a box that
        # reaches beyond the border still contains them (membership is decided by the exact kernel later).
        self.starts = dense.starts

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


def _join(lab: np.ndarray, best_q: np.ndarray, idx: np.ndarray, sey: np.ndarray, sex: np.ndarray,
          centres: _Centres, near: int) -> None:
    """Unassigned pixels of a proposal join instance ``near + 1`` (the candidate lies within ``merge_reach``)."""
    free = idx[lab[idx] == 0]
    lab[free] = near + 1
    best_q[free] = centres.q(near, sey[free], sex[free])


def _found(lab: np.ndarray, best_q: np.ndarray, idx: np.ndarray, q: np.ndarray, label: int, min_size: int) -> bool:
    """Make instance ``label`` of the pixels of a proposal that are unassigned or closer (lower ``q``) to this
    centre than to their own, when they are at least ``min_size`` and fewer than half were assigned."""
    assigned = lab[idx] > 0
    take = ~assigned | (q < best_q[idx])
    n_take = int(take.sum())
    if n_take == 0 or n_take < min_size or int((take & assigned).sum()) >= 0.5 * n_take:
        return False
    lab[idx[take]] = label
    best_q[idx[take]] = q[take]
    return True


def _assign(dense: Dense, params: InferenceConfig) -> tuple[np.ndarray, int]:
    """Step 4, the loop over the candidates in visiting order: the label of every foreground pixel (bucket
    order, 0 = none) and the number of labels made plus one."""
    grid = _BucketGrid(dense)
    sey, sex = dense.ey, dense.ex
    qm = q_max(params)
    lab = np.zeros(sey.size, dtype=np.int32)
    best_q = np.full(sey.size, np.inf)
    next_label = 1
    reach_q = params.merge_reach**2 * qm
    reach_px = math.sqrt(float(np.max(np.maximum(dense.var_y, dense.var_x))) * qm) * params.merge_reach
    centres = _Centres(max(reach_px, 1.0))
    for k, c in enumerate(dense.seeds):
        if lab[c]:
            continue  # candidate already absorbed by an instance
        var = (float(dense.var_y[k]), float(dense.var_x[k]))
        centre, idx, q = _settle(grid, sey, sex, (float(sey[c]), float(sex[c])), var, qm, params.refine_steps)
        if reach_q and (near := centres.nearest(centre, reach_q)) >= 0:
            _join(lab, best_q, idx, sey, sex, centres, near)
        elif _found(lab, best_q, idx, q, next_label, params.min_size):
            if reach_q:
                centres.add(centre, var)
            next_label += 1
    return lab, next_label


def _label_image(dense: Dense, lab: np.ndarray, next_label: int, min_size: int) -> np.ndarray:
    """Step 5: instances below ``min_size`` dropped, labels renumbered densely in creation order, as an image."""
    labels = np.zeros(dense.shape, dtype=np.int32)
    if next_label == 1:
        return labels
    sizes = np.bincount(lab, minlength=next_label)
    keep = sizes >= max(min_size, 1)
    keep[0] = False
    lut = np.zeros(next_label, dtype=np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1, dtype=np.int32)
    labels.reshape(-1)[dense.pixels] = lut[lab]
    logger.debug("cluster: %d candidates, %d instances kept of %d", dense.seeds.size, int(keep.sum()),
                 next_label - 1)
    return labels


def _dense(pred: Predictions, params: InferenceConfig) -> Dense | None:
    """The per-pixel stage, in torch on the tensors' device when any map is a tensor, else in NumPy."""
    maps = tuple(m if is_tensor(m) else np.asarray(m) for m in (pred.offsets, pred.bandwidths, pred.seediness))
    check_inputs(*maps, params.coord_scale)
    tensors = [m for m in maps if is_tensor(m)]
    if not tensors:
        return dense_stage(*maps, params)
    import torch

    from embedtrack.inference import cluster_torch

    device = tensors[0].device
    return cluster_torch.dense_stage(*(torch.as_tensor(m, device=device) for m in maps), params)


def cluster(pred: Predictions, config: InferenceConfig | None = None) -> np.ndarray:
    """Cluster foreground pixels into instances (paper §3.3); see the module docstring for the exact rules.

    Args:
        pred: the frame's predictions; ``offsets`` [2, H, W] in normalised units (channel 0 = y, 1 = x),
            ``bandwidths`` [2, H, W] (sigmoid outputs, before ``exp(w_s * .)``), ``seediness`` [H, W]. NumPy
            arrays, or torch tensors on any device: the per-pixel stage then runs there, with the same result.
        config: thresholds, minimum size, ``w_s`` and ``coord_scale`` (pixels per normalised unit);
            defaults to :class:`InferenceConfig()`.

    Returns:
        ``[H, W]`` int32 label image (NumPy), 0 = background, instances ``1..n`` dense.

    Raises:
        EmbedTrackError: wrong shapes or non-finite predictions on foreground pixels.
    """
    params = config or InferenceConfig()
    dense = _dense(pred, params)
    if dense is None:
        return np.zeros(tuple(pred.seediness.shape), dtype=np.int32)
    return labels_from(dense, params)


def labels_from(dense: Dense, params: InferenceConfig) -> np.ndarray:
    """Steps 4–5 (the loop over the candidates, then the renumbering) on the per-pixel stage's record: the
    ``[H, W]`` int32 label image. :func:`cluster` is the per-pixel stage followed by this."""
    lab, next_label = _assign(dense, params)
    return _label_image(dense, lab, next_label, params.min_size)
