"""Named network outputs of one frame (paper §3.1): the one place where output channels are given names.

The segmentation decoders emit five channels ``[offset y, offset x, bandwidth y, bandwidth x, seediness]`` and
the tracking decoder two ``[offset y, offset x]`` (normalised units: pixels / ``coord_scale``). :meth:`Predictions.
from_maps` is the only code that knows these positions; clustering (§3.3) and linking (§3.4) read the fields.
Works on NumPy arrays and torch tensors (any device) alike, and imports neither torch nor the model: a tensor is
recognised only when torch is already loaded. :meth:`Predictions.to_numpy` and :func:`values_at` are the one
place where maps come from a device to the host.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields
from typing import Any

SEG_CHANNELS = 5
TRACK_CHANNELS = 2


def is_tensor(value: Any) -> bool:
    """True for a torch tensor (without importing torch: a tensor exists only once torch is loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def host_array(value: Any) -> Any:
    """A NumPy array of ``value``: tensors are detached and copied to the host (half and bfloat16 promoted to
    float32); anything else goes through ``np.asarray``."""
    import numpy as np

    if not is_tensor(value):
        return np.asarray(value)
    value = value.detach()
    if value.is_floating_point() and value.element_size() < 4:
        value = value.float()
    return value.cpu().numpy()


def values_at(maps: Any, flat: Any) -> Any:
    """``maps`` [C, H, W] at the flat pixel indices ``flat`` (``row * W + col``, NumPy ints): a [C, len(flat)]
    NumPy array. A tensor on an accelerator is indexed there, so that only these values come to the host (a
    CPU tensor is read in place)."""
    if is_tensor(maps) and maps.device.type != "cpu":
        import torch

        index = torch.as_tensor(flat, device=maps.device)
        return host_array(maps.reshape(maps.shape[0], -1)[:, index])
    maps = host_array(maps)
    return maps.reshape(maps.shape[0], -1)[:, flat]


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

        return np.concatenate([host_array(self.offsets), host_array(self.bandwidths),
                               host_array(self.seediness)[None]])

    def to_numpy(self) -> Predictions:
        """The same predictions with every map a NumPy array on the host (see :func:`host_array`)."""
        maps = {f.name: getattr(self, f.name) for f in fields(self)}
        return Predictions(**{name: None if m is None else host_array(m) for name, m in maps.items()})

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.seediness.shape)  # type: ignore[return-value]
