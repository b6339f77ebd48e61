"""Label images: the set of labels present, and a compact index per pixel (relabelling to 0..n-1).

:func:`as_labels` is the check every label image read from a file passes (masks, markers, results): whole,
non-negative numbers. Integer label images with ordinary label ranges go through a ``np.bincount`` look-up, several times faster
than ``np.unique`` on big frames; other images (negative or huge labels, floats) through ``np.unique``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ctc.errors import CTCFormatError

#: Labels below this go through the bincount fast path (the look-up table stays a few MiB).
_FAST_LIMIT = 1 << 22


def small_labels(labels: np.ndarray) -> bool:
    """Non-negative integer labels below 2**22: look-up tables indexed by label value stay a few MiB."""
    return bool(np.issubdtype(labels.dtype, np.integer) and labels.size and labels.min() >= 0
                and labels.max() < _FAST_LIMIT)


def unique_inverse(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of a label image (background included) and, per pixel, the index of its value,
    in the image's shape: ``values[inverse]`` is the image, ``inverse`` its labels renumbered 0..n-1."""
    labels = np.asarray(labels)
    if small_labels(labels):
        values = np.flatnonzero(np.bincount(labels.ravel()))
        index = np.zeros(int(values[-1]) + 1, dtype=np.intp)
        index[values] = np.arange(values.size)
        return values, index[labels]
    values, inverse = np.unique(labels, return_inverse=True)
    return values, inverse.reshape(labels.shape)


def label_set(labels: np.ndarray) -> np.ndarray:
    """Sorted non-zero labels present in a label image."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return np.zeros(0, dtype=np.int64)
    found = np.flatnonzero(np.bincount(labels.ravel())) if small_labels(labels) else np.unique(labels)
    return found[found != 0]


#: Whole numbers above this are not exact in float64; a float label image must stay below it.
_FLOAT_EXACT = 2**53


def as_labels(image: np.ndarray, path: str | Path) -> np.ndarray:
    """``image`` as a label image: integers (booleans as 0/1; floats holding whole numbers as int64), none
    negative. Anything else is one :class:`CTCFormatError` naming ``path``. Integer images are returned as they
    are, so ordinary uint8/uint16 masks cost nothing."""
    image = np.asarray(image)
    if image.dtype == bool:
        return image.view(np.uint8)
    if np.issubdtype(image.dtype, np.unsignedinteger):
        return image
    if np.issubdtype(image.dtype, np.signedinteger):
        if image.size and int(image.min()) < 0:
            raise CTCFormatError(f"{path}: label image holds negative labels (lowest {int(image.min())}); labels "
                                 "are whole numbers from 0 (background)")
        return image
    if np.issubdtype(image.dtype, np.floating):
        finite = bool(np.isfinite(image).all())
        if finite and (not image.size or (image.min() >= 0 and image.max() < _FLOAT_EXACT
                                          and np.array_equal(image, np.floor(image)))):
            return image.astype(np.int64)
    raise CTCFormatError(f"{path}: label image of dtype {image.dtype} holds values that are not labels (whole "
                         "numbers from 0); save it as an unsigned integer image (uint16)")


def label_stats(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(labels present, centroid rows, centroid columns, areas)`` of one 2-D label image (0 = background).
    Sums run over the compacted labels (:func:`unique_inverse`), so a label of 2**40 costs what a label of 5 does."""
    values, inverse = unique_inverse(labels)
    flat = inverse.reshape(-1)
    counts = np.bincount(flat, minlength=values.size)
    rows, cols = np.divmod(np.arange(flat.size), labels.shape[1])
    present = np.flatnonzero(values > 0)
    ys = np.bincount(flat, weights=rows, minlength=values.size)[present] / counts[present]
    xs = np.bincount(flat, weights=cols, minlength=values.size)[present] / counts[present]
    return values[present], ys, xs, counts[present]
