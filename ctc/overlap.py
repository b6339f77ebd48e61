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


@dataclass(frozen=True)
class Overlaps:
    """Pairs ``(a[k], b[k])`` of non-zero labels sharing ``pixels[k]`` pixels, sorted by ``a`` then ``b``;
    ``area_a[label]`` / ``area_b[label]`` are the labels' pixel counts (indexed by label)."""

    a: np.ndarray
    b: np.ndarray
    pixels: np.ndarray
    area_a: np.ndarray
    area_b: np.ndarray

    def of_smaller(self) -> np.ndarray:
        """Shared pixels as a fraction of the smaller of the two masks, per pair."""
        return self.pixels / np.minimum(self.area_a[self.a], self.area_b[self.b])

    def iou(self) -> np.ndarray:
        """Intersection over union, per pair."""
        return self.pixels / (self.area_a[self.a] + self.area_b[self.b] - self.pixels)


def _flat_labels(labels: np.ndarray, name: str) -> np.ndarray:
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer):
        raise CTCFormatError(f"{name}: label image has dtype {labels.dtype}, expected integers")
    flat = labels.astype(np.int64, copy=False).ravel()
    if flat.size and int(flat.min()) < 0:
        raise CTCFormatError(f"{name}: label image has negative labels")
    return flat


def overlaps(a: np.ndarray, b: np.ndarray) -> Overlaps:
    """The overlap table of two label images of one shape (0 is background)."""
    if np.shape(a) != np.shape(b):
        raise CTCFormatError(f"label images of different shapes {np.shape(a)} and {np.shape(b)}")
    fa, fb = _flat_labels(a, "first image"), _flat_labels(b, "second image")
    width = int(fb.max(initial=0)) + 1
    both = (fa > 0) & (fb > 0)
    keys, pixels = np.unique(fa[both] * width + fb[both], return_counts=True)
    return Overlaps(keys // width, keys % width, pixels, np.bincount(fa), np.bincount(fb))


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
    n_markers = np.bincount(table.a, minlength=table.area_a.size)
    n_segments = np.bincount(table.b, minlength=table.area_b.size)
    good = (n_markers[table.a] == 1) & (n_segments[table.b] == 1)
    lut = np.zeros(table.area_a.size, dtype=np.int64)
    lut[table.a[good]] = table.b[good]
    present = int(np.count_nonzero(table.area_a[1:]))
    kept = int(good.sum())
    return lut[np.asarray(segments)], kept, present - kept
