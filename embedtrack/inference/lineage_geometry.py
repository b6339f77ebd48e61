"""The pixel geometry of the lineage stage (:mod:`embedtrack.inference.lineage`): where an instance's tracking
offsets point, which cells touch, centres, and a merged mask parted between two cells (paper §3.4).

Pure NumPy/SciPy on one or two frames; the stage's bookkeeping across frames stays in the lineage module.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

__all__ = ["MERGE_MIN_SHARE", "shifted", "votes", "touch", "children", "centres", "split_mask", "assign_parts"]


#: A second cell entering a mask must receive at least this share of the mask's shifted pixels.
MERGE_MIN_SHARE = 0.2


def shifted(frame: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(fg, targets)`` of a frame; without tracking offsets every pixel points at its own position."""
    if frame.shifted is not None:
        return frame.shifted
    fg = np.flatnonzero(frame.instances)
    return fg, fg


def votes(frame: Any, prev: np.ndarray, label: int) -> dict[int, int]:
    """``{label at t-1: pixels}``: where the shifted pixels of one instance of ``frame`` land in ``prev``."""
    fg, targets = shifted(frame)
    own = frame.instances.reshape(-1)[fg] == label
    hit = prev.reshape(-1)[targets[own]]
    values, counts = np.unique(hit[hit > 0], return_counts=True)
    return dict(zip(values.tolist(), counts.tolist()))


def touch(instances: np.ndarray, a: int, b: int) -> bool:
    """Whether instances ``a`` and ``b`` share a border (4-neighbourhood)."""
    box = ndimage.find_objects((instances == a).astype(np.int8))
    if not box or box[0] is None:
        return False
    rows, cols = box[0]
    rows = slice(max(rows.start - 1, 0), rows.stop + 1)
    cols = slice(max(cols.start - 1, 0), cols.stop + 1)
    crop = instances[rows, cols]
    grown = ndimage.binary_dilation(crop == a)
    return bool((crop[grown] == b).any())


def children(frame: Any) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for child, parent in sorted(frame.links.items()):
        out.setdefault(parent, []).append(child)
    return out


def centres(instances: np.ndarray, flat: np.ndarray | None = None) -> dict[int, tuple[float, float, int]]:
    """``{label: (y, x, pixels)}``; with ``flat`` (one flat index per pixel) the mean of those positions."""
    labels = instances.reshape(-1)
    fg = np.flatnonzero(labels)
    where = fg if flat is None else flat
    lab = labels[fg].astype(np.int64)
    counts = np.bincount(lab)
    rows, cols = np.divmod(where, instances.shape[1])
    ys, xs = np.bincount(lab, weights=rows), np.bincount(lab, weights=cols)
    return {int(v): (ys[v] / counts[v], xs[v] / counts[v], int(counts[v])) for v in np.flatnonzero(counts)}


def split_mask(mask: np.ndarray, frame: Any, before: np.ndarray, entering: list[int]) -> np.ndarray | None:
    """The pixels of ``mask`` (in ``frame``) parted between two cells of the frame before: 1 / 2 where the
    tracking offsets point into ``entering[0]`` / ``entering[1]``, the rest to the nearest such pixel; None
    when a part would hold less than ``MERGE_MIN_SHARE`` of the mask."""
    fg, targets = shifted(frame)
    inside = mask.reshape(-1)[fg]
    hit = before.reshape(-1)[targets[inside]]
    seeds = np.zeros(mask.size, np.int8)
    pix = fg[inside]
    seeds[pix[hit == entering[0]]] = 1
    seeds[pix[hit == entering[1]]] = 2
    seeds = seeds.reshape(mask.shape)
    if not (seeds == 1).any() or not (seeds == 2).any():
        return None
    _, (iy, ix) = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    parts = np.where(mask, seeds[iy, ix], 0)
    size = int(mask.sum())
    if min(int((parts == 1).sum()), int((parts == 2).sum())) < MERGE_MIN_SHARE * size:
        return None
    return parts


def assign_parts(frame: Any, kids: list[int], parts: np.ndarray) -> tuple[int, int]:
    """``(kid continuing part 1, kid continuing part 2)``: the pairing that gathers more shifted pixels."""
    fg, targets = shifted(frame)
    lab = frame.instances.reshape(-1)[fg]
    hit = parts.reshape(-1)[targets]
    n = [[int(((lab == k) & (hit == p)).sum()) for p in (1, 2)] for k in kids]
    if n[0][0] + n[1][1] >= n[0][1] + n[1][0]:
        return kids[0], kids[1]
    return kids[1], kids[0]
