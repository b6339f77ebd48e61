"""Frame preprocessing shared by training and inference: per-frame percentile normalisation.

Every frame is scaled by its own 1st/99th percentiles ("per frame"), in training and inference alike, so the
tiles of one frame share one intensity scale. Boolean frames count as 0/1. Non-finite pixels (NaN, ±inf) are
left out of the percentiles and set to the low value (0 after scaling), so one broken pixel never empties a
frame; this is logged once per sequence.
"""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)

_warned: set[str] = set()


def _warn_once(source: str, message: str) -> None:
    if source not in _warned:
        _warned.add(source)
        logger.warning("%s: %s", source or "frame", message)


def normalise(frame: np.ndarray, low: float = 1.0, high: float = 99.0, source: str = "") -> np.ndarray:
    """Scale a frame to [0, 1] by its ``low``/``high`` percentiles (values outside are kept, not clipped).

    ``source`` (the sequence folder) names the frame in the one warning about non-finite pixels.
    """
    values = np.asarray(frame)
    if values.dtype == bool:
        values = values.astype(np.uint8)
    values = values.astype(np.float32)
    finite = np.isfinite(values)
    if finite.all():
        lo, hi = np.percentile(values, [low, high])
        return ((values - lo) / max(float(hi - lo), 1e-6)).astype(np.float32)
    if not finite.any():
        _warn_once(source, "a frame holds no finite pixel (all NaN/inf); it is treated as empty")
        return np.zeros(values.shape, np.float32)
    _warn_once(source, f"NaN/inf pixels ({int((~finite).sum())} in the first such frame) are ignored by the "
                       "normalisation and set to the low value")
    lo, hi = np.percentile(values[finite], [low, high])
    out = (values - lo) / max(float(hi - lo), 1e-6)
    out[~finite] = 0.0
    return out.astype(np.float32)
