"""Modality presets of the synthetic generator: parameter ranges, and one concrete draw per sequence.

A :class:`Preset` holds ranges ``(low, high)``; :func:`sample_params` draws one :class:`SequenceParams` from
them, so every sequence gets its own cell size, density, motility, noise, blur, contrast, texture and
background. The ranges are wide on purpose: a model trained on many draws should meet real data of the
modality somewhere inside them. Calibrated against real frames:

* ``fluo`` - Fluo-N2DL-HeLa (nuclei ~300-1000 px, i.e. radius 10-18 px; background ~33000 on a 32768 offset,
  nuclei 150-2000 counts above it, very dim to saturated), Fluo-N2DH-SIM+ (noisy, blurred) and GOWT1 (larger,
  fewer nuclei).
* ``phc`` - PhC-C2DL-PSC (uint8, background ~130 +- 17, cells bright ~200-255, 100-300 px, elongated and
  spindle shaped, bright halo) and PhC-C2DH-U373 (larger grey cells with bright halos).
* ``bf`` - BF-C2DL-HSC / MuSC (round cells with a dark rim on a flat grey background, fast movers).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

from ctc.synth.appearance import PATTERNS, SHAPES, draw_mixture
from ctc.synth.appearance import select as appearance_select

Range = tuple[float, float]


@dataclass(frozen=True)
class Preset:
    """Ranges from which each sequence's parameters are drawn (see :class:`SequenceParams` for meanings)."""

    name: str
    description: str
    dtype: str
    # geometry and population
    radius: Range
    elongation: Range
    pointiness: Range
    tail: Range
    roughness: Range
    density: Range
    # dynamics (speeds in radii per frame)
    speed: Range
    fast_fraction: Range
    fast_factor: Range
    drift: Range
    cycle: Range
    # appearance
    background: Range
    contrast: Range
    dim_fraction: Range
    brightness_spread: Range
    snr: Range
    gain: Range
    blur: Range
    texture_scale: Range
    texture_contrast: Range
    illumination: Range
    bleaching: Range
    body: Range
    halo: Range
    rim: Range
    defocus: Range
    speckle: Range
    hot_pixels: Range
    debris: Range
    gradient: Range
    haze: Range


@dataclass(frozen=True)
class SequenceParams:
    """One concrete draw of a preset: everything the simulation and the renderer of one sequence need.

    Lengths are in pixels, intensities in output grey values.
    """

    preset: str
    dtype: str
    radius: float  # mean semi-axis length of a grown cell
    elongation: float  # mean ratio of the long to the short semi-axis
    pointiness: float  # shape exponent: 2 = ellipse, ~1 = diamond
    tail: float  # share of the long axis taken by thin, dimmer tails (protrusions): 0 = none
    roughness: float  # amplitude of the boundary harmonics (fraction of the radius)
    density: float  # fraction of the area covered by cells
    speed: float  # random-walk step of a normal cell, in radii per frame
    fast_fraction: float  # share of fast movers
    fast_factor: float  # how much faster they are
    drift: float  # common drift speed (e.g. flow in the dish)
    cycle: float  # mean cell cycle in frames
    background: float  # background grey value
    contrast: float  # peak signal of a normal cell above background
    dim_fraction: float  # share of dim cells (fluo) / low contrast cells
    brightness_spread: float  # log-normal spread of per-cell brightness
    snr: float  # contrast / sigma of the additive Gaussian noise
    gain: float  # photons per grey value (Poisson part of the noise)
    blur: float  # Gaussian blur sigma of the optics
    texture_scale: float  # size of the texture grains
    texture_contrast: float  # relative modulation of the texture
    illumination: float  # relative amplitude of the uneven illumination
    bleaching: float  # relative loss of signal per frame
    body: float  # signed strength of the cell body (phc, bf: cells brighter > 0 or darker < 0 than background)
    halo: float  # phase contrast halo / brightfield outer halo strength (relative to contrast)
    rim: float  # brightfield dark rim strength (relative to contrast)
    defocus: float  # share of slightly out-of-focus cells (blurred more, dimmer)
    speckle: float  # multiplicative (speckle) noise level
    hot_pixels: float  # hot pixels per megapixel (fixed positions, far above the background)
    debris: float  # unlabelled debris particles per 100,000 pixels
    gradient: float  # linear background gradient across the frame (relative to contrast)
    haze: float  # out-of-focus glow around cells (relative to their signal)
    patterns: tuple[str, ...] = ()  # interior pattern families this sequence may draw (ctc.synth.appearance)
    pattern_weights: tuple[float, ...] = ()
    shapes: tuple[str, ...] = ()  # outline families
    shape_weights: tuple[float, ...] = ()


_FLUO = Preset(
    name="fluo",
    description="fluorescent nuclei (Fluo-N2DL-HeLa, Fluo-N2DH-SIM+, Fluo-N2DH-GOWT1)",
    dtype="uint16",
    radius=(6.0, 26.0),
    elongation=(1.0, 1.6),
    pointiness=(1.8, 2.6),
    tail=(0.0, 0.0),
    roughness=(0.02, 0.07),
    density=(0.03, 0.45),
    speed=(0.03, 0.16),
    fast_fraction=(0.0, 0.15),
    fast_factor=(2.0, 4.0),
    drift=(0.0, 0.15),
    cycle=(40.0, 120.0),
    background=(80.0, 33000.0),
    contrast=(150.0, 6000.0),
    dim_fraction=(0.05, 0.35),
    brightness_spread=(0.15, 0.7),
    snr=(4.0, 80.0),
    gain=(0.3, 8.0),
    blur=(0.6, 2.6),
    texture_scale=(1.0, 3.0),
    texture_contrast=(0.06, 0.25),
    illumination=(0.0, 0.35),
    bleaching=(0.0, 0.01),
    body=(1.0, 1.0),
    halo=(0.0, 0.0),
    rim=(0.0, 0.0),
    defocus=(0.0, 0.25),
    speckle=(0.0, 0.15),
    hot_pixels=(0.0, 300.0),
    debris=(0.0, 3.0),
    gradient=(0.0, 0.5),
    haze=(0.0, 0.15),
)

_PHC = Preset(
    name="phc",
    description="phase contrast (PhC-C2DL-PSC, PhC-C2DH-U373)",
    dtype="uint8",
    radius=(4.5, 16.0),
    elongation=(1.4, 3.0),
    pointiness=(1.5, 2.2),
    tail=(0.2, 0.7),
    roughness=(0.04, 0.16),
    density=(0.02, 0.2),
    speed=(0.02, 0.12),
    fast_fraction=(0.0, 0.15),
    fast_factor=(2.0, 4.0),
    drift=(0.0, 0.1),
    cycle=(40.0, 150.0),
    background=(85.0, 150.0),
    contrast=(50.0, 140.0),
    dim_fraction=(0.0, 0.15),
    brightness_spread=(0.1, 0.3),
    snr=(15.0, 60.0),
    gain=(0.0, 0.0),
    blur=(0.5, 1.2),
    texture_scale=(1.0, 2.5),
    texture_contrast=(0.03, 0.15),
    illumination=(0.03, 0.12),
    bleaching=(0.0, 0.0),
    body=(-0.35, 1.3),
    halo=(0.1, 1.0),
    rim=(0.0, 0.0),
    defocus=(0.0, 0.15),
    speckle=(0.0, 0.06),
    hot_pixels=(0.0, 50.0),
    debris=(0.0, 2.0),
    gradient=(0.0, 0.3),
    haze=(0.0, 0.0),
)

_BF = Preset(
    name="bf",
    description="brightfield (BF-C2DL-HSC, BF-C2DL-MuSC)",
    dtype="uint16",
    radius=(6.0, 14.0),
    elongation=(1.0, 1.25),
    pointiness=(1.9, 2.2),
    tail=(0.0, 0.0),
    roughness=(0.01, 0.05),
    density=(0.02, 0.15),
    speed=(0.12, 0.4),
    fast_fraction=(0.1, 0.3),
    fast_factor=(1.5, 3.0),
    drift=(0.0, 0.3),
    cycle=(30.0, 90.0),
    background=(1500.0, 20000.0),
    contrast=(0.04, 0.15),  # relative to the background
    dim_fraction=(0.0, 0.1),
    brightness_spread=(0.1, 0.3),
    snr=(5.0, 40.0),
    gain=(0.0, 0.0),
    blur=(0.5, 1.5),
    texture_scale=(1.0, 2.5),
    texture_contrast=(0.05, 0.3),
    illumination=(0.01, 0.05),
    bleaching=(0.0, 0.0),
    body=(-0.3, 1.0),
    halo=(0.0, 0.6),
    rim=(0.5, 2.0),
    defocus=(0.0, 0.15),
    speckle=(0.0, 0.06),
    hot_pixels=(0.0, 50.0),
    debris=(0.0, 2.0),
    gradient=(0.0, 0.3),
    haze=(0.0, 0.0),
)

#: ``fluo`` narrowed to medium-size nuclei at moderate density, noise and blur, with fewer divisions: the
#: conditions of the demo (``embedtrack demo``) and of the bundled ``synth-fluorescence`` model. Its
#: ``name`` stays ``fluo``: it renders and draws appearance families as ``fluo`` does.
_FLUO_MODERATE = replace(
    _FLUO,
    description="fluorescent nuclei in moderate conditions (medium size and density, moderate noise and blur)",
    radius=(11.0, 20.0),
    elongation=(1.0, 1.4),
    density=(0.05, 0.25),
    cycle=(60.0, 120.0),
    dim_fraction=(0.05, 0.2),
    brightness_spread=(0.15, 0.5),
    snr=(10.0, 60.0),
    blur=(0.6, 1.6),
    defocus=(0.0, 0.15),
)

#: Generator presets by the name ``embedtrack synth --preset`` takes; a preset's ``name`` is its modality.
SYNTH_PRESETS: dict[str, Preset] = {"fluo": _FLUO, "fluo-moderate": _FLUO_MODERATE, "phc": _PHC, "bf": _BF}

# parameters drawn log-uniformly (they span orders of magnitude); the rest uniformly
_LOG_UNIFORM = {"radius", "background", "contrast", "snr", "gain"}


def sample_params(preset: Preset, rng: np.random.Generator,
                  appearance: tuple[str, ...] | None = None) -> SequenceParams:
    """Draw one sequence's parameters from the preset's ranges (deterministic for the generator state).

    ``appearance``: the families (:mod:`ctc.synth.appearance`) the sequence may use; default all of the
    modality's. Each sequence draws its own mixture weights over them.
    """
    values: dict[str, float] = {}
    for f in fields(Preset):
        if f.name in ("name", "description", "dtype"):
            continue
        low, high = getattr(preset, f.name)
        if f.name in _LOG_UNIFORM and low > 0:
            values[f.name] = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        else:
            values[f.name] = float(rng.uniform(low, high))
    if preset.name == "bf":
        values["contrast"] *= values["background"]
    if preset.name == "fluo":
        # camera offset: either a few hundred counts or a 2**15 offset as in Fluo-N2DL-HeLa
        offset = 32768.0 if rng.random() < 0.35 else 0.0
        values["background"] = offset + float(np.exp(rng.uniform(np.log(80.0), np.log(2000.0))))
        values["contrast"] = min(values["contrast"], 0.6 * (65535.0 - values["background"]))
    kept = appearance_select(preset.name, appearance)
    patterns = tuple(n for n in kept if n in PATTERNS[preset.name])
    shapes = tuple(n for n in kept if n in SHAPES)
    return SequenceParams(preset=preset.name, dtype=preset.dtype, **values,
                          patterns=patterns, pattern_weights=draw_mixture(patterns, rng),
                          shapes=shapes, shape_weights=draw_mixture(shapes, rng))
