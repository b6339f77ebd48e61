"""Per-dataset settings, declared as one table (paper §4.3–4.4).

``labels`` says where the training masks come from:

* ``"gt"``: the tracking ground truth masks are full segmentations (Fluo-N2DH-SIM+, the synthetic presets).
* ``"st"``: silver-truth masks (``<SEQ>_ST/SEG``) that take the track id of the single GT TRA marker they cover.
* ``"sparse"``: the CTC ground truth as shipped, TRA markers on every frame and GT/SEG outlines on some
  (:mod:`embedtrack.training.sparse_labels`); ``sparse_fill`` says what the markers-only frames know beyond the marker.

``ring_factor``: how far around a marker (in marker radii) the cell may extend on frames without outlines:
0.5 covers 99 % of the outlined GOWT1 nuclei, MSC's cells with their long processes need 2 (87 %).

``generalist-fluo`` trains one model on several fluorescence datasets at once (sequences of each, side by side
in one dataset folder, every one with TRA markers and SEG outlines).

``val_fraction``: share of the outlined frames held out, as one block at the end (paper §4.3: 10 %; a quarter
for the real CTC training data, where one sequence must give both training and validation frames).

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
    val_fraction: float = 0.1
    sparse_fill: str = "ignore"
    ring_factor: float = 0.5  # unknown ring around a marker, in marker radii (sparse labels)

    @property
    def coord_scale(self) -> float:
        """Pixels per normalised coordinate unit: fixed by the training crop size, not by any frame size."""
        return float(self.crop_size)


_TABLE: tuple[Preset, ...] = (
    #      name               labels crop batch shift
    Preset("BF-C2DL-HSC",      "st", 256, 8, 40),
    Preset("BF-C2DL-MuSC",     "st", 256, 8, 40),
    Preset("DIC-C2DH-HeLa",    "st", 256, 8, 16),
    Preset("Fluo-C2DL-MSC",    "sparse", 512, 4, 24, val_fraction=0.25, ring_factor=2.0),
    Preset("Fluo-N2DH-GOWT1",  "sparse", 256, 8, 12, val_fraction=0.25, sparse_fill="grow"),
    Preset("Fluo-N2DL-HeLa",   "st", 256, 8, 12),
    Preset("PhC-C2DH-U373",    "st", 256, 8, 12),
    Preset("PhC-C2DL-PSC",     "st", 256, 8, 8),
    Preset("Fluo-N2DH-SIM+",   "gt", 256, 8, 12, val_fraction=0.25),
    Preset("generalist-fluo",  "sparse", 256, 8, 12, val_fraction=0.25),
    Preset("synth-fluo",       "gt", 256, 8, 12),
    Preset("synth-phc",        "gt", 256, 8, 12),
    Preset("synth-bf",         "gt", 256, 8, 40),
)

PRESETS: dict[str, Preset] = {p.name: p for p in _TABLE}
CTC_DATASETS: tuple[str, ...] = tuple(p.name for p in _TABLE if not p.name.startswith(("synth-", "generalist-")))


def get_preset(name: str) -> Preset:
    """The preset called ``name``; an unknown name lists the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"Unknown preset {name!r}. Known presets: {', '.join(PRESETS)}") from None
