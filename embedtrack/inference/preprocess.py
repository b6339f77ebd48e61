"""Frame preprocessing shared by training and inference: per-frame percentile normalisation.

Every frame is scaled by its own 1st/99th percentiles ("per frame"), in training and inference alike, so the
tiles of one frame share one intensity scale. Boolean frames count as 0/1. Non-finite pixels (NaN, ±inf) are
left out of the percentiles and set to the low value (0 after scaling), so one broken pixel never empties a
frame; this is logged once per sequence.

8- and 16-bit integer frames are scaled in float32 (exact for them); every other type (float64, float32, 32- and
64-bit integers) in float64, so a float64 frame near 1e38 is normalised like the same frame scaled down, not
overflowed to infinity. The result is float32. Complex frames are refused (one error naming the source).
"""

from __future__ import annotations

import logging

import numpy as np

from embedtrack.errors import EmbedTrackError

logger = logging.getLogger(__name__)

_warned: set[str] = set()


def _warn_once(source: str, message: str) -> None:
    if source not in _warned:
        _warned.add(source)
        logger.warning("%s: %s", source or "frame", message)


def normalise(frame: np.ndarray, low: float = 1.0, high: float = 99.0, source: str = "") -> np.ndarray:
    """Scale a frame to [0, 1] by its ``low``/``high`` percentiles (values outside are kept, not clipped).

    ``source`` (the sequence folder) names the frame in the one warning about non-finite pixels and in errors.
    """
    values = np.asarray(frame)
    if np.issubdtype(values.dtype, np.complexfloating):
        raise EmbedTrackError(f"{source or 'frame'}: pixels are complex numbers ({values.dtype}); pass the real "
                              "part, the magnitude or the phase as a real-valued image")
    if values.dtype == bool:
        values = values.astype(np.uint8)
    small = values.dtype.kind in "ui" and values.dtype.itemsize <= 2  # exact in float32, no overflow
    values = values.astype(np.float32 if small else np.float64)
    finite = np.isfinite(values)
    if finite.all():
        lo, hi = np.percentile(values, [low, high])
        return _float32((values - lo) / max(float(hi - lo), 1e-6))
    if not finite.any():
        _warn_once(source, "a frame holds no finite pixel (all NaN/inf); it is treated as empty")
        return np.zeros(values.shape, np.float32)
    _warn_once(source, f"NaN/inf pixels ({int((~finite).sum())} in the first such frame) are ignored by the "
                       "normalisation and set to the low value")
    lo, hi = np.percentile(values[finite], [low, high])
    out = (values - lo) / max(float(hi - lo), 1e-6)
    out[~finite] = 0.0
    return _float32(out)


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _float32(values: np.ndarray) -> np.ndarray:
    """Normalised values as float32; far outliers of a float64 frame are clipped to float32's range, not inf."""
    if values.dtype == np.float32:
        return values
    return np.clip(values, -_FLOAT32_MAX, _FLOAT32_MAX).astype(np.float32)
