"""Per-dataset settings, declared as one table (paper §4.3–4.4).

``labels`` says where the training masks come from:

* ``"gt"``: the tracking ground truth masks are full segmentations (Fluo-N2DH-SIM+, the synthetic presets).
* ``"st"``: silver-truth masks (``<SEQ>_ST/SEG``) that take the track id of the single GT TRA marker they cover.

``max_shift`` is the largest extra displacement (pixels) between the t and t-1 crops used as augmentation to
simulate fast motion; the brightfield datasets move fastest (paper Table 1: overlap of the 10 % most motile
cells below 0.6). ``fov_border`` is the default border (pixels) excluded at inference; 0 keeps the whole frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from embedtrack.errors import ConfigError


@dataclass(frozen=True)
class Preset:
    name: str
    labels: str = "st"
    crop_size: int = 256
    batch_size: int = 8
    max_shift: int = 12
    fov_border: int = 0

    @property
    def coord_scale(self) -> float:
        """Pixels per normalised coordinate unit: fixed by the training crop size, not by any frame size."""
        return float(self.crop_size)


_TABLE: tuple[Preset, ...] = (
    #      name               labels crop batch shift
    Preset("BF-C2DL-HSC",      "st", 256, 8, 40),
    Preset("BF-C2DL-MuSC",     "st", 256, 8, 40),
    Preset("DIC-C2DH-HeLa",    "st", 256, 8, 16),
    Preset("Fluo-C2DL-MSC",    "st", 512, 4, 24),
    Preset("Fluo-N2DH-GOWT1",  "st", 256, 8, 12),
    Preset("Fluo-N2DL-HeLa",   "st", 256, 8, 12),
    Preset("PhC-C2DH-U373",    "st", 256, 8, 12),
    Preset("PhC-C2DL-PSC",     "st", 256, 8, 8),
    Preset("Fluo-N2DH-SIM+",   "gt", 256, 8, 12),
    Preset("synth-fluo",       "gt", 256, 8, 12),
    Preset("synth-phc",        "gt", 256, 8, 12),
    Preset("synth-bf",         "gt", 256, 8, 40),
)

PRESETS: dict[str, Preset] = {p.name: p for p in _TABLE}
CTC_DATASETS: tuple[str, ...] = tuple(p.name for p in _TABLE if not p.name.startswith("synth-"))


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name lists the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"Unknown preset {name!r}. Known presets: {', '.join(PRESETS)}") from None
