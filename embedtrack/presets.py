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
    modality: str
    labels: str = "st"
    crop_size: int = 256
    batch_size: int = 8
    max_shift: int = 12
    fov_border: int = 0
    synthetic: str | None = None  # ctc.synth preset that imitates this data, if any

    @property
    def coord_scale(self) -> float:
        """Pixels per normalised coordinate unit: fixed by the training crop size, not by any frame size."""
        return float(self.crop_size)


_TABLE: tuple[Preset, ...] = (
    #      name               modality        labels crop  batch shift
    Preset("BF-C2DL-HSC", "brightfield", "st", 256, 8, 40, synthetic="bf"),
    Preset("BF-C2DL-MuSC", "brightfield", "st", 256, 8, 40, synthetic="bf"),
    Preset("DIC-C2DH-HeLa", "dic", "st", 256, 8, 16),
    Preset("Fluo-C2DL-MSC", "fluorescence", "st", 512, 4, 24),
    Preset("Fluo-N2DH-GOWT1", "fluorescence", "st", 256, 8, 12, synthetic="fluo"),
    Preset("Fluo-N2DL-HeLa", "fluorescence", "st", 256, 8, 12, synthetic="fluo"),
    Preset("PhC-C2DH-U373", "phase contrast", "st", 256, 8, 12, synthetic="phc"),
    Preset("PhC-C2DL-PSC", "phase contrast", "st", 256, 8, 8, synthetic="phc"),
    Preset("Fluo-N2DH-SIM+", "fluorescence", "gt", 256, 8, 12, synthetic="fluo"),
    Preset("synth-fluo", "fluorescence", "gt", 256, 8, 12, synthetic="fluo"),
    Preset("synth-phc", "phase contrast", "gt", 256, 8, 12, synthetic="phc"),
    Preset("synth-bf", "brightfield", "gt", 256, 8, 40, synthetic="bf"),
)

PRESETS: dict[str, Preset] = {p.name: p for p in _TABLE}
CTC_DATASETS: tuple[str, ...] = tuple(p.name for p in _TABLE if not p.name.startswith("synth-"))


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name lists the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"Unknown preset {name!r}. Known presets: {', '.join(PRESETS)}") from None
