"""Label images: the set of labels present, and a compact index per pixel (relabelling to 0..n-1).

Integer label images with ordinary label ranges go through a ``np.bincount`` look-up, several times faster
than ``np.unique`` on big frames; other images (negative or huge labels, floats) through ``np.unique``.
"""

from __future__ import annotations

import numpy as np

#: Labels below this go through the bincount fast path (the look-up table stays a few MiB).
_FAST_LIMIT = 1 << 22


def _fast(labels: np.ndarray) -> bool:
    return bool(np.issubdtype(labels.dtype, np.integer) and labels.size and labels.min() >= 0
                and labels.max() < _FAST_LIMIT)


def unique_inverse(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of a label image (background included) and, per pixel, the index of its value,
    in the image's shape: ``values[inverse]`` is the image, ``inverse`` its labels renumbered 0..n-1."""
    labels = np.asarray(labels)
    if _fast(labels):
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
    found = np.flatnonzero(np.bincount(labels.ravel())) if _fast(labels) else np.unique(labels)
    return found[found != 0]
