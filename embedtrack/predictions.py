"""Named network outputs of one frame (paper §3.1): the one place where output channels are given names.

The segmentation decoders emit five channels ``[offset y, offset x, bandwidth y, bandwidth x, seediness]`` and
the tracking decoder two ``[offset y, offset x]`` (normalised units: pixels / ``coord_scale``). :meth:`Predictions.
from_maps` is the only code that knows these positions; clustering (§3.3) and linking (§3.4) read the fields.
Works on NumPy arrays and torch tensors alike (slicing only), and imports neither torch nor the model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SEG_CHANNELS = 5
TRACK_CHANNELS = 2


@dataclass
class Predictions:
    """Outputs for one frame: ``offsets`` [2, H, W], ``bandwidths`` [2, H, W], ``seediness`` [H, W] and, from
    the second frame of a sequence on, ``track_offsets`` [2, H, W] pointing to the cell centre at t-1."""

    offsets: Any
    bandwidths: Any
    seediness: Any
    track_offsets: Any | None = None

    @classmethod
    def from_maps(cls, seg: Any, track: Any | None = None) -> Predictions:
        """Name the channels of a segmentation map [5, H, W] (and a tracking map [2, H, W], if any)."""
        if seg.shape[0] != SEG_CHANNELS:
            raise ValueError(f"segmentation map must have {SEG_CHANNELS} channels, got shape {tuple(seg.shape)}")
        if track is not None and track.shape[0] != TRACK_CHANNELS:
            raise ValueError(f"tracking map must have {TRACK_CHANNELS} channels, got shape {tuple(track.shape)}")
        return cls(offsets=seg[0:2], bandwidths=seg[2:4], seediness=seg[4], track_offsets=track)

    def seg_maps(self) -> Any:
        """The segmentation channels stacked back into one [5, H, W] NumPy array (inverse of :meth:`from_maps`)."""
        import numpy as np

        return np.concatenate([np.asarray(self.offsets), np.asarray(self.bandwidths),
                               np.asarray(self.seediness)[None]])

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.seediness.shape)  # type: ignore[return-value]
