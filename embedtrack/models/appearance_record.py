"""The ``appearance`` record of a model folder's ``config.json``: the imaging conditions the model was trained at.

Cell diameter and body SNR of the training frames' labelled cells (:mod:`ctc.conditions`), the appearance stage's
own estimates on the same frames, the model's own first-pass diameter and the model-free object diameter; the
stage (:mod:`embedtrack.inference.appearance`) compares a sequence with them. Part of the vocabulary a model
folder records, like :class:`~embedtrack.models.inference_config.InferenceConfig`, so it lives beside it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from embedtrack.errors import ConfigError
from embedtrack.models.inference_config import check_fields


def _num(lo: float | None = None, lo_open: bool = False, default: Any = None) -> Any:
    return field(default=default, metadata={"lo": lo, "lo_open": lo_open})


@dataclass(frozen=True)
class AppearanceRecord:
    """The conditions a model was trained at (``config.json`` ``appearance``), measured on its training frames'
    labels with :mod:`ctc.conditions`: median cell diameter (pixels), median body SNR, the stage's own SNR
    estimate on the same frames (:func:`estimate_snr`), the median diameter of the model's own instances on
    them (:func:`first_pass_diameter`), background noise, cells measured and where."""

    cell_diameter: float = _num(0.0, lo_open=True, default=1.0)
    snr: float = _num(default=0.0)
    snr_estimate: float | None = _num()
    diameter_estimate: float | None = _num(0.0, lo_open=True)  # the model's own first pass on the same frames
    object_diameter: float | None = _num(0.0, lo_open=True)  # model-free: Otsu objects (:func:`object_diameter`)
    noise: float | None = _num(0.0)
    cells: int = _num(0, default=0)
    frames: str = ""

    @classmethod
    def from_dict(cls, data: Any, source: str = "appearance") -> AppearanceRecord:
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: expected an object, got {type(data).__name__}")
        check_fields(cls, data, source, required=("cell_diameter", "snr"))
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
