"""Whole-cell instances: every label one connected piece without holes.

The clustering (paper §3.3) assigns pixels by their shifted positions, not by where they lie, so a label can
come out in several pieces (a stray pixel whose offset happened to point at a distant centre) or with holes
(pixels below the seediness threshold inside a cell). The CTC measures (SEG, DET, TRA; paper §4.2) work on
pixel sets and accept such labels, but a cell is one connected region, and stray islands cost SEG (they count
against the instance's IoU) and confuse the linking of §3.4. :func:`whole_cells` enforces the rules below.

Rules (deterministic, vectorised with ``scipy.ndimage`` / ``skimage.measure``):

* **Connectivity**: every output label is exactly one **4-connected** component (hence also one
  8-connected component, so the guarantee holds whichever definition a reader uses).
* **Islands**: each label keeps its largest 4-connected piece (ties: the first in raster order). Every other
  piece (an island) joins the label whose kept piece it shares the most 4-adjacent pixel pairs with (ties: the
  smaller label), which keeps that label connected. An island touching only other islands waits until one of
  them has joined a label (repeated until nothing changes); an island that touches no kept piece of another
  label, directly or through such a chain, becomes background. Pixels only ever move out of islands: the
  kept piece of every label keeps all its pixels.
* **Holes**: a background region (8-connected, the dual of 4-connected labels) that does not touch the frame
  border and whose surrounding pixels (8-neighbours) all belong to one and the same label is filled with that
  label. Background enclosed by two or more labels (a gap between touching cells) stays background.
* **Ids** are kept: no label is renumbered, and every input label is still present (its kept piece remains).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi
from skimage.measure import label as label_regions

from embedtrack.errors import EmbedTrackError

__all__ = ["whole_cells"]

_FULL = np.ones((3, 3), dtype=bool)


def whole_cells(labels: np.ndarray, fill_holes: bool = True) -> np.ndarray:
    """Make every label of ``labels`` one 4-connected piece and fill its holes (see the module docstring).

    Args:
        labels: ``[H, W]`` integer label image, 0 = background.
        fill_holes: fill background regions enclosed by a single label.

    Returns:
        A new label image of the same shape and dtype; the ids are those of the input.

    Raises:
        EmbedTrackError: ``labels`` is not 2-D.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise EmbedTrackError(f"whole_cells: labels must be 2-D, got shape {labels.shape}")
    out = labels.copy()
    if not out.any():
        return out
    while _reassign_islands(out):
        pass
    if fill_holes:
        _fill_holes(out)
    return out


def _pieces(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4-connected pieces of equal label: piece image, owner label per piece, kept flag per piece."""
    pieces = label_regions(labels, background=0, connectivity=1)
    n = int(pieces.max())
    sizes = np.bincount(pieces.ravel(), minlength=n + 1)
    owner = np.zeros(n + 1, dtype=np.int64)
    owner[pieces.ravel()] = labels.ravel()
    order = np.lexsort((np.arange(1, n + 1), -sizes[1:], owner[1:])) + 1  # per label: largest, then first
    first = np.ones(n, dtype=bool)
    first[1:] = owner[order][1:] != owner[order][:-1]
    kept = np.zeros(n + 1, dtype=bool)
    kept[order[first]] = True
    return pieces, owner, kept


def _adjacent_pairs(pieces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All ordered pairs (a, b) of different non-zero pieces that are 4-neighbours, once per pixel pair."""
    a = np.concatenate([pieces[:, :-1].ravel(), pieces[:-1, :].ravel()])
    b = np.concatenate([pieces[:, 1:].ravel(), pieces[1:, :].ravel()])
    touch = (a != b) & (a > 0) & (b > 0)
    a, b = a[touch], b[touch]
    return np.concatenate([a, b]), np.concatenate([b, a])


def _reassign_islands(labels: np.ndarray) -> bool:
    """One round, in place: islands next to a kept piece of another label join it, islands touching no other
    piece are dropped. Islands touching only other islands wait for the next round (True is returned) when some
    island joined a label in this one, and are dropped otherwise."""
    pieces, owner, kept = _pieces(labels)
    islands = ~kept
    islands[0] = False
    if not islands.any():
        return False
    a, b = _adjacent_pairs(pieces)
    touching = np.zeros(owner.size, dtype=bool)
    touching[a] = True
    use = islands[a] & kept[b]
    a, b = a[use], b[use]
    lut = owner.copy()
    joined = np.zeros(owner.size, dtype=bool)
    if a.size:
        n = owner.size
        keys, counts = np.unique(a * n + b, return_counts=True)
        ia, ib = np.divmod(keys, n)
        best = np.lexsort((owner[ib], -counts, ia))  # per island: most shared border, then smaller label
        first = np.ones(best.size, dtype=bool)
        first[1:] = ia[best][1:] != ia[best][:-1]
        lut[ia[best][first]] = owner[ib[best][first]]
        joined[ia] = True
    waiting = islands & touching & ~joined
    again = bool(joined.any() and waiting.any())
    lut[islands & ~joined & (~touching | (not again))] = 0
    labels[...] = lut[pieces]
    return again


def _fill_holes(labels: np.ndarray) -> None:
    """Fill background regions off the border whose 8-neighbours all carry one label. Works in place."""
    background, n = ndi.label(labels == 0, structure=_FULL)
    if n == 0:
        return
    inner = np.ones(n + 1, dtype=bool)
    inner[0] = False
    inner[np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]])] = False
    candidates = np.flatnonzero(inner[background])  # pixels of regions off the border (usually few)
    if candidates.size == 0:
        return
    h, w = labels.shape
    rows, cols = np.divmod(candidates, w)  # never on the border, so every 8-neighbour exists
    around = np.stack([labels[rows + dy, cols + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], 1)
    region = background[rows, cols]
    big = int(labels.max()) + 1
    hi = around.max(1).astype(np.int64)
    lo = np.where(around > 0, around, big).min(1).astype(np.int64)
    seen = hi > 0  # pixels next to some label
    region, hi, lo = region[seen], hi[seen], lo[seen]
    one = np.zeros(n + 1, dtype=np.int64)
    one[region] = hi  # any one label seen by each region; the region is a hole if it sees nothing else
    mixed = np.bincount(region, weights=(hi != one[region]) | (lo != one[region]), minlength=n + 1) > 0
    one[mixed | ~inner] = 0
    fill = one[background[rows, cols]]
    labels[rows[fill > 0], cols[fill > 0]] = fill[fill > 0].astype(labels.dtype)
