"""Side-by-side previews of a frame and its ground truth (for documentation and visual checks)."""

from __future__ import annotations

import numpy as np
from skimage.segmentation import find_boundaries


def normalise(image: np.ndarray, low: float = 0.5, high: float = 99.8) -> np.ndarray:
    """Percentile-normalise an image to uint8 (as a viewer with auto contrast shows it)."""
    lo, hi = np.percentile(image, [low, high])
    scaled = (image.astype(np.float32) - lo) / max(float(hi - lo), 1e-9)
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def track_colours(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """A bright RGB colour per label value 0..max (row ``label``), stable for a seed."""
    rng = np.random.default_rng(seed)
    n = int(labels.max()) + 1
    hue = rng.uniform(0.0, 1.0, n)
    # HSV -> RGB with full saturation and value, vectorised
    k = (np.array([5.0, 3.0, 1.0])[None, :] + hue[:, None] * 6.0) % 6.0
    rgb = 1.0 - np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return (rgb * 255.0).astype(np.uint8)


def preview(image: np.ndarray, labels: np.ndarray, gap: int = 4) -> np.ndarray:
    """RGB uint8 array: the normalised frame, a gap, and the same frame with each track's outline in colour."""
    grey = normalise(image)
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    outlined = rgb.copy()
    edges = find_boundaries(labels, mode="inner") & (labels > 0)
    outlined[edges] = track_colours(labels)[labels[edges]]
    spacer = np.full((image.shape[0], gap, 3), 255, np.uint8)
    return np.concatenate([rgb, spacer, outlined], axis=1)
