"""Overlap between two label images, and the matches built on it.

:func:`overlaps` counts the pixels every pair of non-zero labels shares (a sparse table: only pairs that touch)
together with the area of every label. :func:`best_match` picks, for each label of one image, the label of the
other with the highest score; :func:`mutual_best` keeps the pairs that are each other's best match. Ties go to
the smaller label, so the results do not depend on the order of the table.

:func:`name_by_markers` is the rule that gives silver-truth (ST) masks the track ids of the CTC tracking
markers; training labels and the dataset statistics both use it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ctc.errors import CTCFormatError
from ctc.labels import small_labels, unique_inverse


@dataclass(frozen=True)
class Overlaps:
    """Pairs ``(a[k], b[k])`` of non-zero labels sharing ``pixels[k]`` pixels, sorted by ``a`` then ``b``, and
    the pixel count of every label of each image (:meth:`area_a`, :meth:`area_b`).

    Labels are compacted first (``values_a[i]`` is the i-th distinct value of the first image, ``sizes_a[i]`` its
    pixel count), so no array is ever as long as the largest label: a label of 2**40 costs what a label of 5 does.
    """

    a: np.ndarray
    b: np.ndarray
    pixels: np.ndarray
    values_a: np.ndarray
    sizes_a: np.ndarray
    values_b: np.ndarray
    sizes_b: np.ndarray

    def area_a(self, labels: np.ndarray | int) -> np.ndarray:
        """Pixel counts of ``labels`` in the first image (0 for a label it does not hold)."""
        return _lookup(self.values_a, self.sizes_a, labels)

    def area_b(self, labels: np.ndarray | int) -> np.ndarray:
        """Pixel counts of ``labels`` in the second image (0 for a label it does not hold)."""
        return _lookup(self.values_b, self.sizes_b, labels)

    def of_smaller(self) -> np.ndarray:
        """Shared pixels as a fraction of the smaller of the two masks, per pair."""
        return self.pixels / np.minimum(self.area_a(self.a), self.area_b(self.b))

    def iou(self) -> np.ndarray:
        """Intersection over union, per pair."""
        return self.pixels / (self.area_a(self.a) + self.area_b(self.b) - self.pixels)


def _lookup(values: np.ndarray, sizes: np.ndarray, labels: np.ndarray | int) -> np.ndarray:
    """``sizes`` of ``labels`` looked up in the sorted ``values`` (0 where a label is not among them)."""
    keys = np.asarray(labels, dtype=np.int64)
    if values.size == 0:
        return np.zeros(keys.shape, dtype=np.int64)
    at = np.minimum(np.searchsorted(values, keys), values.size - 1)
    return np.where(values[at] == keys, sizes[at], 0)


def _codes(labels: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(code per pixel, label of each code, pixel count of each code)`` of a non-negative label image. Small
    labels are their own codes (fast); others are compacted to 0..n-1, so no array is as long as a huge label."""
    labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.view(np.uint8)
    if not np.issubdtype(labels.dtype, np.integer):
        raise CTCFormatError(f"{name}: label image has dtype {labels.dtype}, expected integers")
    flat = labels.ravel()
    if flat.size and np.issubdtype(labels.dtype, np.signedinteger) and int(flat.min()) < 0:
        raise CTCFormatError(f"{name}: label image has negative labels")
    if small_labels(labels) or not flat.size:
        counts = np.bincount(flat)
        return flat, np.arange(counts.size, dtype=np.int64), counts
    code_labels, inverse = np.unique(flat, return_inverse=True)
    return inverse.reshape(-1), code_labels.astype(np.int64), np.bincount(inverse.reshape(-1))


def overlaps(a: np.ndarray, b: np.ndarray) -> Overlaps:
    """The overlap table of two label images of one shape (0 is background)."""
    if np.shape(a) != np.shape(b):
        raise CTCFormatError(f"label images of different shapes {np.shape(a)} and {np.shape(b)}")
    ca, labels_a, counts_a = _codes(a, "first image")
    cb, labels_b, counts_b = _codes(b, "second image")
    both = (np.asarray(a).ravel() > 0) & (np.asarray(b).ravel() > 0)
    width = max(labels_b.size, 1)
    keys, pixels = np.unique(ca[both].astype(np.int64) * width + cb[both], return_counts=True)
    present_a, present_b = counts_a > 0, counts_b > 0
    return Overlaps(labels_a[keys // width], labels_b[keys % width], pixels, labels_a[present_a],
                    counts_a[present_a], labels_b[present_b], counts_b[present_b])


def best_match(keys: np.ndarray, values: np.ndarray, score: np.ndarray) -> dict[int, int]:
    """``{key: value}`` with the highest ``score`` per key (ties: the smallest value)."""
    order = np.lexsort((values, -np.asarray(score, dtype=np.float64)))
    best: dict[int, int] = {}
    for k, v in zip(np.asarray(keys)[order].tolist(), np.asarray(values)[order].tolist()):
        best.setdefault(k, v)
    return best


def mutual_best(table: Overlaps, score: np.ndarray) -> list[tuple[int, int, float]]:
    """``(label in a, label in b, score)`` for the pairs that are each other's best match, sorted by label in a."""
    best_b = best_match(table.a, table.b, score)
    best_a = best_match(table.b, table.a, score)
    lookup = {(x, y): s for x, y, s in zip(table.a.tolist(), table.b.tolist(), np.asarray(score).tolist())}
    return [(x, y, lookup[(x, y)]) for x, y in sorted(best_b.items()) if best_a.get(y) == x]


def name_by_markers(segments: np.ndarray, markers: np.ndarray) -> tuple[np.ndarray, int, int]:
    """Give each segment the id of the single tracking marker it covers; returns ``(labels, kept, dropped)``.

    A segment is kept when it touches exactly one marker and that marker touches no other segment; segments
    covering no marker or several, and segments sharing a marker with another segment, become background and
    are counted as dropped. ``labels`` is int64, in the shape of ``segments``.
    """
    table = overlaps(segments, markers)
    seg_at = np.searchsorted(table.values_a, table.a)  # compact index of each pair's segment
    _, marker_at, n_segments = np.unique(table.b, return_inverse=True, return_counts=True)
    n_markers = np.bincount(seg_at, minlength=table.values_a.size)
    good = (n_markers[seg_at] == 1) & (n_segments[marker_at.reshape(-1)] == 1)
    lut = np.zeros(table.values_a.size, dtype=np.int64)
    lut[seg_at[good]] = table.b[good]
    present = int(np.count_nonzero(table.values_a))
    kept = int(good.sum())
    return lut[unique_inverse(np.asarray(segments))[1]], kept, present - kept
