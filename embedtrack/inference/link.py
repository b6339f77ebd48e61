"""Linking instance masks backwards in time with the predicted tracking offsets (paper §3.4).

Every pixel of an instance at ``t`` is shifted by its tracking offset (normalised units, channel 0 = y,
1 = x; converted to pixels by ``scale`` and rounded, then clipped to the image). The instance at ``t-1``
that receives most of an instance's shifted pixels is that instance's *candidate*:

* background competes: when more of an instance's shifted pixels land on background than on the best mask,
  the instance has no candidate (paper: "shifted pixels not overlapping with any mask" give a new track).
  Without this, a cell whose predecessor was missed at ``t-1`` would claim a neighbour through a few edge
  pixels and fake a division (``background_competes``). ``min_fraction`` can demand more: a candidate must
  then receive at least that fraction of the instance's pixels;
* ties between masks at ``t-1`` go to the smaller label (deterministic).

Then, per mask at ``t-1``: exactly one candidate -> same track; exactly two -> division (both link to it,
the mask at ``t-1`` is the mother) when the smaller has at least ``min_daughter_ratio`` of the larger's area
(otherwise the larger continues and the smaller starts a new track); more than two -> none of them links
(all start new tracks). Instances without a link start new tracks; masks at ``t-1`` without a candidate end
their track.

All thresholds and rules come from :class:`embedtrack.models.inference_config.InferenceConfig` (``coord_scale``,
``min_fraction``, ``background_competes``, ``min_daughter_ratio``), the one place that holds their defaults.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from embedtrack.errors import EmbedTrackError
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.models.predictions import is_tensor, values_at

logger = logging.getLogger(__name__)

__all__ = ["link", "candidates", "shifted_targets"]

# Above this many (label_t, label_prev) pairs the pair table is built by sorting instead of np.bincount.
_MAX_DENSE_PAIRS = 1 << 22
# Labels up to this value are compacted with np.bincount instead of np.unique.
_MAX_DENSE_LABEL = 1 << 20


def _compact(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``np.unique(values, return_inverse=True, return_counts=True)`` for non-negative ints, without sorting
    when the largest value is small."""
    top = int(values.max()) if values.size else 0
    if top > _MAX_DENSE_LABEL:
        uniq, inv, counts = np.unique(values, return_inverse=True, return_counts=True)
        return uniq, inv.reshape(-1), counts
    counts = np.bincount(values, minlength=top + 1)
    uniq = np.flatnonzero(counts)
    lut = np.zeros(top + 1, dtype=np.int64)
    lut[uniq] = np.arange(uniq.size)
    return uniq, lut[values], counts[uniq]


def _check(labels_t: np.ndarray, track_offsets: Any, labels_prev: np.ndarray, scale: float) -> None:
    if labels_t.ndim != 2:
        raise EmbedTrackError(f"link: labels_t must be 2-D (H, W), got shape {labels_t.shape}")
    if labels_prev.shape != labels_t.shape:
        raise EmbedTrackError(f"link: labels_prev has shape {labels_prev.shape}, labels_t has {labels_t.shape}")
    if tuple(track_offsets.shape) != (2, *labels_t.shape):
        raise EmbedTrackError(
            f"link: track_offsets must have shape {(2, *labels_t.shape)}, got {tuple(track_offsets.shape)}"
        )
    if not (math.isfinite(scale) and scale > 0):
        raise EmbedTrackError(f"link: scale must be a positive number of pixels per unit, got {scale}")
    for name, arr in (("labels_t", labels_t), ("labels_prev", labels_prev)):
        if not np.issubdtype(arr.dtype, np.integer):
            raise EmbedTrackError(f"link: {name} must be an integer label image, got dtype {arr.dtype}")
        if arr.size and int(arr.min()) < 0:
            raise EmbedTrackError(f"link: {name} contains negative labels")


def shifted_targets(labels_t: np.ndarray, track_offsets: Any, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Where each instance pixel at ``t`` lands at ``t-1``: ``(fg, targets)``, the flat indices of the pixels
    with a label (``np.flatnonzero(labels_t)``) and the flat indices their shifted positions fall on (rounded,
    clipped to the image). Only the offsets of these pixels come to the host from a tensor."""
    h, w = labels_t.shape
    fg = np.flatnonzero(labels_t)
    if fg.size == 0:
        return fg, fg.copy()
    rows, cols = np.divmod(fg, w)
    offsets = values_at(track_offsets, fg)  # gathered on the tensor's device for a tensor
    ty = rows + offsets[0].astype(np.float64) * scale
    tx = cols + offsets[1].astype(np.float64) * scale
    if not (np.isfinite(ty).all() and np.isfinite(tx).all()):
        raise EmbedTrackError("link: the tracking offsets contain NaN or infinite values inside instances")
    ty = np.clip(np.rint(ty), 0, h - 1).astype(np.int64)
    tx = np.clip(np.rint(tx), 0, w - 1).astype(np.int64)
    return fg, ty * w + tx


def candidates(
    labels_t: np.ndarray,
    track_offsets: Any,
    labels_prev: np.ndarray,
    config: InferenceConfig | None = None,
    shifted: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[int, int]:
    """Each instance at ``t`` mapped to the mask at ``t-1`` receiving most of its shifted pixels.

    Instances whose shifted pixels hit no mask (or fewer than ``min_fraction`` of them hit the best one) are
    absent. Arguments as in :func:`link`.
    """
    config = config or InferenceConfig()
    scale = config.coord_scale
    labels_t = np.asarray(labels_t)
    labels_prev = np.asarray(labels_prev)
    track_offsets = track_offsets if is_tensor(track_offsets) else np.asarray(track_offsets)
    _check(labels_t, track_offsets, labels_prev, scale)
    if not labels_t.any() or not labels_prev.any():
        return {}
    fg, targets = shifted if shifted is not None else shifted_targets(labels_t, track_offsets, scale)
    lab_t = labels_t.reshape(-1)[fg].astype(np.int64)
    hit = labels_prev.reshape(-1)[targets].astype(np.int64)

    # Instance sizes at t, for min_fraction.
    uniq_t, inv_t, size_t = _compact(lab_t)
    on_mask = hit > 0
    if not on_mask.any():
        return {}
    uniq_p, inv_p, _ = _compact(hit[on_mask])
    it = inv_t[on_mask]
    n_t, n_p = uniq_t.size, uniq_p.size
    if n_t * n_p <= _MAX_DENSE_PAIRS:
        table = np.bincount(it * n_p + inv_p, minlength=n_t * n_p).reshape(n_t, n_p)
        best = table.argmax(axis=1)  # first maximum = smallest label at t-1
        best_hits = table[np.arange(n_t), best]
    else:
        pairs, counts = np.unique(it * n_p + inv_p, return_counts=True)
        pt, pp = np.divmod(pairs, n_p)
        order = np.lexsort((pp, -counts, pt))  # per t-instance: most hits, then smallest label
        first = order[np.r_[True, pt[order][1:] != pt[order][:-1]]]
        best = np.zeros(n_t, dtype=np.int64)
        best_hits = np.zeros(n_t, dtype=np.int64)
        best[pt[first]] = pp[first]
        best_hits[pt[first]] = counts[first]
    ok = (best_hits > 0) & (best_hits >= config.min_fraction * size_t)
    if config.background_competes:
        ok &= best_hits >= np.bincount(inv_t[~on_mask], minlength=n_t)
    return {int(a): int(b) for a, b in zip(uniq_t[ok], uniq_p[best[ok]])}


def link(
    labels_t: np.ndarray,
    track_offsets: Any,
    labels_prev: np.ndarray,
    config: InferenceConfig | None = None,
    shifted: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[int, int]:
    """Links ``{label at t: label at t-1}`` for continuing tracks and divisions (paper §3.4).

    Args:
        labels_t: ``[H, W]`` instance labels at ``t`` (0 = background, any positive integers).
        track_offsets: ``[2, H, W]`` tracking offsets at ``t`` pointing to the cell centre at ``t-1``
            (normalised units, channel 0 = y, 1 = x); a NumPy array or a torch tensor on any device (only
            the offsets of instance pixels come to the host).
        labels_prev: ``[H, W]`` instance labels at ``t-1``.
        config: ``coord_scale`` (pixels per normalised unit), ``min_fraction`` (share of an instance's pixels
            its candidate must receive; 0: one pixel suffices, as in the paper), ``background_competes`` and
            ``min_daughter_ratio`` (see the module docstring); defaults to :class:`InferenceConfig()`.
        shifted: :func:`shifted_targets` of these labels and offsets when already computed.

    Returns:
        ``{label_t: label_prev}``: a mask at ``t-1`` with one candidate continues in it; with two, both are its
        daughters. Instances absent from the dict start new tracks. Ready for ``LineageBuilder.add_frame``.

    Raises:
        EmbedTrackError: mismatched shapes, non-integer or negative labels, bad scale, non-finite offsets.
    """
    config = config or InferenceConfig()
    min_daughter_ratio = config.min_daughter_ratio
    cand = candidates(labels_t, track_offsets, labels_prev, config, shifted)
    if not cand:
        return {}
    kids = np.array(list(cand.keys()), dtype=np.int64)
    parents = np.array(list(cand.values()), dtype=np.int64)
    _, inv, n_claims = np.unique(parents, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    keep = n_claims[inv] <= 2
    if not keep.all():
        logger.debug("link: %d masks at t-1 claimed by more than two instances", int((n_claims > 2).sum()))
    if min_daughter_ratio > 0 and (n_claims == 2).any():
        areas = np.bincount(np.asarray(labels_t).reshape(-1).astype(np.int64))
        sizes = areas[kids].astype(np.float64)
        for group in np.flatnonzero(n_claims == 2):
            pair = np.flatnonzero(inv == group)
            small, large = pair[np.argsort(sizes[pair], kind="stable")]
            if sizes[small] < min_daughter_ratio * sizes[large]:
                keep[small] = False
    return {int(a): int(b) for a, b in zip(kids[keep], parents[keep])}
