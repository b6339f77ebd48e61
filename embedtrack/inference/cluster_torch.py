"""The per-pixel stage of the clustering (paper §3.3) on torch tensors, on the tensors' device.

The same steps as :func:`embedtrack.inference.cluster_dense.dense_stage`, written with torch, so that on a GPU the maps
never leave it: only foreground-sized arrays (pixel indices and shifted positions in bucket order) and
candidate-sized ones come back to the host, where the sequential loop over the candidates runs. The results are
bit-identical to the NumPy stage's (see :mod:`embedtrack.inference.cluster_dense`). The host waits for the device at the
foreground count, the finiteness check, the candidate count, the candidates' bandwidths and the final copies;
nothing else on the way needs a value back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from embedtrack.inference.cluster_dense import NON_FINITE_OFFSETS, Dense, grid_shape, kernels, window_sums
from embedtrack.errors import EmbedTrackError
from embedtrack.models.inference_config import InferenceConfig

__all__ = ["dense_stage"]


def _float32_at_least(t: torch.Tensor) -> torch.Tensor:
    """Maps below float32 (half, bfloat16) are promoted; detached from any autograd graph."""
    t = t.detach()
    return t.float() if t.is_floating_point() and t.element_size() < 4 else t


def window_mean(seediness: torch.Tensor, size: int) -> torch.Tensor:
    """:func:`embedtrack.inference.cluster_dense.window_mean` on a tensor: the same float64 sums in the same order."""
    lo, hi = size // 2, size - 1 - size // 2
    padded = F.pad(seediness.double()[None, None], (lo, hi, lo, hi), mode="replicate")[0, 0]
    return (window_sums(padded, tuple(seediness.shape), size) / float(size * size)).float()


def _mean3_at(maps: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """3x3 mean of the two channels of ``maps`` [2, H, W] (edges replicated) at the given pixels, float64."""
    h, w = maps.shape[1:]
    total = torch.zeros((2, rows.numel()), dtype=torch.float64, device=maps.device)
    for dr in (-1, 0, 1):
        rr = (rows + dr).clamp(0, h - 1)
        for dc in (-1, 0, 1):
            total += maps[:, rr, (cols + dc).clamp(0, w - 1)].double()
    return total / 9.0


def _bucket_order(ey: torch.Tensor, ex: torch.Tensor, shape: tuple[int, int], bucket: int
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Stable order of the pixels by bucket, and the bucket starts (see :class:`Dense`)."""
    nby, nbx = grid_shape(shape, bucket)
    by = torch.floor(ey / bucket).clamp(0, nby - 1).long()
    bx = torch.floor(ex / bucket).clamp(0, nbx - 1).long()
    key, order = torch.sort(by * nbx + bx, stable=True)
    starts = torch.searchsorted(key, torch.arange(nby * nbx + 1, device=key.device))
    return order, starts


def _candidates(ey: torch.Tensor, ex: torch.Tensor, fg_mask: torch.Tensor, min_votes: int) -> torch.Tensor:
    """Flat indices (ascending) of the foreground pixels with more than ``min_votes`` votes around them; votes
    outside the image go to an extra bin that is dropped (no boolean indexing: no wait for the device)."""
    h, w = fg_mask.shape
    vy = torch.round(ey).long()  # half to even, as np.rint
    vx = torch.round(ex).long()
    inside = (vy >= 0) & (vy < h) & (vx >= 0) & (vx < w)
    target = torch.where(inside, vy * w + vx, h * w)
    counts = torch.zeros(h * w + 1, dtype=torch.int32, device=ey.device)
    counts.index_add_(0, target, torch.ones_like(target, dtype=torch.int32))
    box = window_sums(F.pad(counts[: h * w].reshape(h, w), (1, 1, 1, 1)), (h, w), 3)
    return torch.nonzero(((box > min_votes) & fg_mask).reshape(-1)).reshape(-1)


def dense_stage(offsets: torch.Tensor, bandwidths: torch.Tensor, seediness: torch.Tensor,
                params: InferenceConfig) -> Dense | None:
    """The per-pixel stage on tensors (all on one device); ``None`` when there is no foreground or no
    candidate centre."""
    offsets, bandwidths, seediness = (_float32_at_least(t) for t in (offsets, bandwidths, seediness))
    h, w = seediness.shape
    if params.seed_window > 1:
        seediness = window_mean(seediness, params.seed_window)
    fg_mask = seediness > params.seed_threshold
    fg_idx = torch.nonzero(fg_mask.reshape(-1)).reshape(-1)
    if fg_idx.numel() == 0:
        return None
    ey = torch.div(fg_idx, w, rounding_mode="floor") + offsets[0].reshape(-1)[fg_idx].double() * params.coord_scale
    ex = fg_idx % w + offsets[1].reshape(-1)[fg_idx].double() * params.coord_scale
    if not bool(torch.isfinite(ey).all() & torch.isfinite(ex).all()):
        raise EmbedTrackError(NON_FINITE_OFFSETS)
    cand = _candidates(ey, ex, fg_mask, params.min_votes)
    if cand.numel() == 0:
        return None
    cand = cand[torch.sort(-seediness.reshape(-1)[cand], stable=True).indices]  # ties: row-major
    means = _mean3_at(bandwidths, torch.div(cand, w, rounding_mode="floor"), cand % w)
    var_y, var_x, bucket = kernels(means.cpu().numpy(), params)
    order, starts = _bucket_order(ey, ex, (h, w), bucket)
    position = torch.empty_like(order)
    position[order] = torch.arange(order.numel(), device=order.device)
    seeds = position[torch.searchsorted(fg_idx, cand)]
    shifted = torch.stack((ey, ex))[:, order].cpu().numpy()
    return Dense((h, w), fg_idx[order].cpu().numpy(), shifted[0], shifted[1], bucket, starts.cpu().numpy(),
                 seeds.cpu().numpy(), var_y, var_x)
