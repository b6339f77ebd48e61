"""EmbedTrack losses (paper §3.2): instance (Lovász hinge), bandwidth variance, seed and tracking losses.

Positions are normalised pixel coordinates ``p = (row, col) / coord_scale``; offsets and bandwidths are the
network outputs. For an instance m with bandwidth mean ``b_m`` the kernel is
``d = exp(-(c_y - e_y)^2 / s_y - (c_x - e_x)^2 / s_x)`` with ``s = exp(w_s * b_m)``.

Pixels labelled :data:`~embedtrack.training.sparse_labels.IGNORE` (unknown: beyond a marker on a frame without outlines)
belong to no instance and are not background: they are left out of the instance, seed and tracking terms.

Sums over instances in the paper's equations are divided by the instance count here, so that the loss
weights do not depend on how many cells a crop holds. The tracking loss uses t's bandwidth detached: the
tracking decoder should move pixels into the right cell at t-1, not retune the segmentation bandwidths.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from embedtrack.models.predictions import Predictions
from embedtrack.training.sparse_labels import IGNORE

MEDOID_SAMPLES = 384  # medoid candidates/reference pixels per instance; exact for smaller instances
LOVASZ_TOL = 1e-3  # hinge errors below this are left out of the sort (see lovasz_hinge)
WINDOW_MARGIN = 16  # pixels around an instance's bounding box that its kernel/Lovász terms look at


@dataclass(frozen=True)
class LossWeights:
    """Loss weights with the paper's defaults (eq. 5, 10, 12)."""

    instance: float = 1.0
    var: float = 10.0
    seed: float = 1.0
    fg: float = 1.0
    seg: float = 1.0
    track: float = 1.0
    w_s: float = -10.0


def lovasz_grad(gt_sorted: torch.Tensor, gts: torch.Tensor | None = None) -> torch.Tensor:
    """Gradient of the Lovász extension of the Jaccard loss for labels sorted by decreasing error.

    ``gt_sorted``: [..., N] of 0/1, row-wise. ``gts``: positives per row [..., 1] when the rows hold only the
    leading part of the sorted elements (default: the row sums).
    """
    if gts is None:
        gts = gt_sorted.sum(-1, keepdim=True)
    intersection = gts - gt_sorted.cumsum(-1)
    union = gts + (1.0 - gt_sorted).cumsum(-1)
    jaccard = 1.0 - intersection / union.clamp(min=1e-12)
    return torch.cat([jaccard[..., :1], jaccard[..., 1:] - jaccard[..., :-1]], -1)


def lovasz_hinge(logits: torch.Tensor, labels: torch.Tensor, tol: float = 0.0) -> torch.Tensor:
    """Binary Lovász hinge per row: logits [..., N] (any real), labels [..., N] in {0, 1} -> loss [...].

    With ``tol > 0`` only the elements whose hinge error exceeds ``tol`` are sorted (a partial sort with
    ``topk``); the others come last in the order and add at most ``tol`` each to the loss, so the result is
    within ``tol`` of the exact value while costing far less on large images with small objects.
    """
    labels = labels.to(logits.dtype)
    errors = 1.0 - logits * (2.0 * labels - 1.0)
    gts = labels.sum(-1, keepdim=True)
    if tol > 0:
        keep = int((errors > tol).sum(-1).max()) if errors.numel() else 0
        errors_sorted, order = torch.topk(errors, max(keep, 1), dim=-1, sorted=True)
    else:
        errors_sorted, order = torch.sort(errors, dim=-1, descending=True)
    grad = lovasz_grad(torch.gather(labels, -1, order), gts)
    return (F.relu(errors_sorted) * grad).sum(-1)


def position_grid(height: int, width: int, coord_scale: float, device: torch.device | None = None) -> torch.Tensor:
    """Normalised pixel positions [2, H, W]: channel 0 = row / scale, channel 1 = col / scale."""
    rows = torch.arange(height, device=device, dtype=torch.float32) / coord_scale
    cols = torch.arange(width, device=device, dtype=torch.float32) / coord_scale
    return torch.stack(torch.meshgrid(rows, cols, indexing="ij"))


def medoid(points: torch.Tensor) -> torch.Tensor:
    """Medoid of points [n, 2] (exact for n <= MEDOID_SAMPLES, else on an even subsample)."""
    n = points.shape[0]
    if n > MEDOID_SAMPLES:
        points = points[torch.linspace(0, n - 1, MEDOID_SAMPLES, device=points.device).long()]
    total = torch.cdist(points, points).sum(1)
    return points[torch.argmin(total)]


@dataclass
class Instances:
    """Instance structure of one label image.

    ``ids`` [M] sorted track ids; ``inv`` [N] instance index per pixel (0 = background or unknown, m+1 = ids[m]);
    ``unknown`` [N] marks the unknown pixels;
    ``counts`` [M] pixels per instance; ``centres`` [M, 2] medoids; ``window`` [M, L] flat pixel indices of each
    instance's neighbourhood (its bounding box grown by a margin, padded with index 0), ``valid`` [M, L] marks
    the real entries and ``positive`` [M, L] those belonging to the instance. Kernel and Lovász terms are
    evaluated on these windows only: a pixel far from a cell can only matter to that cell's loss through a huge
    offset, and such a pixel is already penalised by its own cell's (or the background seed) loss.
    """

    ids: torch.Tensor
    inv: torch.Tensor
    counts: torch.Tensor
    centres: torch.Tensor
    window: torch.Tensor
    valid: torch.Tensor
    positive: torch.Tensor
    unknown: torch.Tensor

    @property
    def background(self) -> torch.Tensor:
        return (self.inv == 0) & ~self.unknown

    @classmethod
    def from_labels(cls, labels: torch.Tensor, positions: torch.Tensor) -> Instances:
        height, width = labels.shape
        flat = labels.reshape(-1)
        unknown = flat == IGNORE
        ids = torch.unique(flat)
        ids = ids[(ids != 0) & (ids != IGNORE)]
        inv = torch.searchsorted(ids, flat.contiguous()) + 1
        inv = torch.where((flat == 0) | unknown, torch.zeros_like(inv), inv)
        pos = positions.reshape(2, -1)
        order = torch.argsort(inv, stable=True)  # pixels grouped by instance, one pass for all instances
        counts = torch.bincount(inv, minlength=len(ids) + 1)[1:]
        ends = torch.cumsum(counts, 0) + (flat.numel() - int(counts.sum()))
        centres, windows = [], []
        for m, (b, n) in enumerate(zip(ends.tolist(), counts.tolist())):
            pixels = order[b - n: b]
            centres.append(medoid(pos[:, pixels].T))
            rows, cols = pixels // width, pixels % width
            windows.append(_window(int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max()),
                                   height, width, labels.device))
        if not windows:
            empty = torch.zeros((0, 1), dtype=torch.long, device=labels.device)
            return cls(ids, inv, counts, pos.new_zeros((0, 2)), empty, empty.bool(), empty.bool(), unknown)
        size = max(len(w) for w in windows)
        window = torch.zeros((len(ids), size), dtype=torch.long, device=labels.device)
        valid = torch.zeros((len(ids), size), dtype=torch.bool, device=labels.device)
        for m, w in enumerate(windows):
            window[m, : len(w)] = w
            valid[m, : len(w)] = True
        valid &= ~unknown[window]
        positive = valid & (inv[window] == torch.arange(1, len(ids) + 1, device=labels.device)[:, None])
        return cls(ids, inv, counts, torch.stack(centres), window, valid, positive, unknown)


def _window(r0: int, r1: int, c0: int, c1: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """Flat indices of the box [r0, r1] x [c0, c1] grown by a margin (at least WINDOW_MARGIN px)."""
    mr = max(WINDOW_MARGIN, (r1 - r0 + 1) // 2)
    mc = max(WINDOW_MARGIN, (c1 - c0 + 1) // 2)
    rows = torch.arange(max(0, r0 - mr), min(height, r1 + mr + 1), device=device)
    cols = torch.arange(max(0, c0 - mc), min(width, c1 + mc + 1), device=device)
    return (rows[:, None] * width + cols[None, :]).reshape(-1)


def kernel(centres: torch.Tensor, shifted: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Gaussian-kernel distance of shifted pixels [2, M, L] to their instance's centre [M, 2] with s [M, 2]."""
    dy = (centres[:, 0:1] - shifted[0]) ** 2 / sigma[:, 0:1]
    dx = (centres[:, 1:2] - shifted[1]) ** 2 / sigma[:, 1:2]
    return torch.exp(-dy - dx)


def _window_lovasz(dist: torch.Tensor, inst: Instances, rows: torch.Tensor | None = None) -> torch.Tensor:
    """Mean Lovász hinge of (2D - 1) against the instance masks, over the instances' windows."""
    valid, positive = inst.valid, inst.positive
    if rows is not None:
        valid, positive = valid[rows], positive[rows]
    logits = torch.where(valid, 2.0 * dist - 1.0, torch.full_like(dist, -2.0))  # padding: error -1, sorts last
    return lovasz_hinge(logits, positive.to(dist.dtype), LOVASZ_TOL).mean()


def segmentation_loss(
    seg: torch.Tensor, inst: Instances, positions: torch.Tensor, w: LossWeights
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """Instance + variance + seed loss of one frame.

    ``seg`` [5, H, W] network output. Returns (weighted loss, components, mean bandwidth per instance [M, 2]).
    """
    n_pix = seg.shape[1] * seg.shape[2]
    named = Predictions.from_maps(seg)
    offsets, bw = named.offsets.reshape(2, n_pix), named.bandwidths.reshape(2, n_pix)
    seed = named.seediness.reshape(n_pix)
    background = inst.background
    bg_loss = (seed[background] ** 2).mean() if background.any() else seed.sum() * 0.0
    zero = seg.sum() * 0.0
    n_inst = len(inst.ids)
    if n_inst == 0:
        parts = {"instance": zero, "var": zero, "seed": bg_loss}
        return w.seed * bg_loss, parts, bw.new_zeros((0, 2))
    counts = inst.counts[:, None].to(bw.dtype)
    fg = inst.inv > 0
    fg_inst = inst.inv[fg] - 1
    bw_fg = bw[:, fg].T  # [F, 2]
    bw_mean = bw.new_zeros((n_inst, 2)).index_add(0, fg_inst, bw_fg) / counts
    sq_dev = ((bw_fg - bw_mean[fg_inst]) ** 2).sum(1)
    var = (bw.new_zeros(n_inst).index_add(0, fg_inst, sq_dev) / counts[:, 0]).mean()
    sigma = torch.exp(w.w_s * bw_mean)
    shifted = positions.reshape(2, n_pix) + offsets
    dist = kernel(inst.centres, shifted[:, inst.window], sigma)  # [M, L]
    instance = _window_lovasz(dist, inst)
    own = kernel(inst.centres[fg_inst], shifted[:, fg, None], sigma[fg_inst])[:, 0]  # own-centre kernel
    fg_err = bw.new_zeros(n_inst).index_add(0, fg_inst, (own.detach() - seed[fg]) ** 2) / counts[:, 0]
    seed_loss = w.fg * fg_err.mean() + bg_loss
    total = w.instance * instance + w.var * var + w.seed * seed_loss
    return total, {"instance": instance, "var": var, "seed": seed_loss}, bw_mean


def tracking_loss(
    track: torch.Tensor,
    inst_t: Instances,
    inst_prev: Instances,
    bw_mean_t: torch.Tensor,
    links: torch.Tensor,
    positions: torch.Tensor,
    w: LossWeights,
) -> torch.Tensor:
    """Lovász hinge of t's pixels shifted by the tracking offsets against the medoid of their cell at t-1.

    ``links`` [K, 2]: rows (id at t, id at t-1) of cells whose predecessor (same cell or mother) is in t-1.
    """
    zero = track.sum() * 0.0
    if links.numel() == 0 or len(inst_t.ids) == 0 or len(inst_prev.ids) == 0:
        return zero
    idx_t = _index_of(inst_t.ids, links[:, 0])
    idx_p = _index_of(inst_prev.ids, links[:, 1])
    keep = (idx_t >= 0) & (idx_p >= 0)
    if not keep.any():
        return zero
    idx_t, idx_p = idx_t[keep], idx_p[keep]
    n_pix = track.shape[1] * track.shape[2]
    shifted = positions.reshape(2, n_pix) + track.reshape(2, n_pix)
    sigma = torch.exp(w.w_s * bw_mean_t[idx_t].detach())
    dist = kernel(inst_prev.centres[idx_p], shifted[:, inst_t.window[idx_t]], sigma)
    return _window_lovasz(dist, inst_t, idx_t)


def _index_of(ids: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """Position of each query id in the sorted ``ids`` (-1 where absent)."""
    pos = torch.searchsorted(ids, query.contiguous()).clamp(max=max(len(ids) - 1, 0))
    found = ids[pos] == query
    return torch.where(found, pos, torch.full_like(pos, -1))


def embedtrack_loss(
    seg_t: torch.Tensor,
    seg_prev: torch.Tensor,
    track: torch.Tensor,
    labels_t: torch.Tensor,
    labels_prev: torch.Tensor,
    links: list[torch.Tensor],
    coord_scale: float,
    weights: LossWeights | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss of a batch (eq. 12): seg(t) + seg(t-1) + track, averaged over the batch.

    seg_*: [B, 5, H, W]; track: [B, 2, H, W]; labels_*: [B, H, W] integer track ids; links: per sample [K, 2].
    Returns the loss tensor and its components as floats (for logging).
    """
    w = weights or LossWeights()
    seg_t, seg_prev, track = seg_t.float(), seg_prev.float(), track.float()
    batch, _, height, width = seg_t.shape
    positions = position_grid(height, width, coord_scale, seg_t.device)
    total = seg_t.sum() * 0.0
    log = {"instance": 0.0, "var": 0.0, "seed": 0.0, "track": 0.0}
    for b in range(batch):
        inst_t = Instances.from_labels(labels_t[b], positions)
        inst_prev = Instances.from_labels(labels_prev[b], positions)
        loss_t, parts_t, bw_t = segmentation_loss(seg_t[b], inst_t, positions, w)
        loss_p, parts_p, _ = segmentation_loss(seg_prev[b], inst_prev, positions, w)
        trk = tracking_loss(track[b], inst_t, inst_prev, bw_t, links[b], positions, w)
        total = total + w.seg * (loss_t + loss_p) + w.track * trk
        for key in ("instance", "var", "seed"):
            log[key] += float((parts_t[key] + parts_p[key]).detach()) / batch
        log["track"] += float(trk.detach()) / batch
    total = total / batch
    log["total"] = float(total.detach())
    return total, log
