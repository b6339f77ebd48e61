"""Appearance families of synthetic cells: interior patterns and outline shapes, drawn per sequence and per cell.

A model learns what its training data show; real nuclei differ in chromatin texture, nucleoli, rims and shape
far more than one texture model covers. Every sequence therefore draws a mixture over the *families* its
modality allows, and every cell draws one family of each kind from that mixture:

* **pattern** families modulate a cell's interior (multiplicatively, ``1 + pattern``): ``smooth``, ``speckle``
  (fine chromatin grain), ``blobs`` (coarse heterochromatin), ``nucleoli`` (bright spots), ``holes`` (dark
  vacuoles), ``rim`` (bright border, dim centre), ``condensed`` (small, very bright, grainy: mitotic-like),
  ``halves`` (one half brighter), ``shadeoff`` (phase contrast centre fading to background) and ``lens``
  (brightfield bright centre);
* **shape** families set a cell's persistent outline: ``round``, ``elongated``, ``kidney``, ``lobed``,
  ``blebs``.

Families are addressable by name (``embedtrack synth --appearance`` / ``--hold-out``), so that a family can be
held out of training and a model scored on it. Daughters inherit their mother's families.
"""

from __future__ import annotations

import math

import numpy as np

from ctc.errors import CTCError

PATTERNS: dict[str, tuple[str, ...]] = {
    "fluo": ("smooth", "speckle", "blobs", "nucleoli", "holes", "rim", "condensed", "halves"),
    "phc": ("smooth", "speckle", "blobs", "holes", "shadeoff", "halves"),
    "bf": ("smooth", "speckle", "blobs", "lens", "shadeoff", "halves"),
}
SHAPES: tuple[str, ...] = ("round", "elongated", "kidney", "lobed", "blebs")
LOOK_PARAMS = 8  # per-cell random numbers in [0, 1) that place spots, orient halves and set strengths


def families(preset: str) -> tuple[str, ...]:
    """All family names of a modality: its patterns, then the shapes."""
    return PATTERNS[preset] + SHAPES


def select(preset: str, appearance: tuple[str, ...] | None, hold_out: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The families a dataset may use: ``appearance`` minus ``hold_out``, checked by name.

    A kind (patterns, shapes) that ``appearance`` does not name is used in full; at least one of each kind must
    remain after ``hold_out``.
    """
    known = families(preset)
    for name in tuple(appearance or ()) + tuple(hold_out):
        if name not in known:
            raise CTCError(f"unknown appearance family {name!r} for preset {preset}; "
                           f"choose from {', '.join(known)}")
    kept: list[str] = []
    for kind in (PATTERNS[preset], SHAPES):
        named = [n for n in kind if n in (appearance or ())] or list(kind)
        left = [n for n in named if n not in hold_out]
        if not left:
            raise CTCError(f"appearance of preset {preset}: nothing left of {', '.join(kind)} after "
                           f"holding out {', '.join(hold_out)}")
        kept += left
    return tuple(kept)


def draw_mixture(names: tuple[str, ...], rng: np.random.Generator) -> tuple[float, ...]:
    """Mixture weights over ``names`` for one sequence: some sequences dominated by one family, some mixed."""
    weights = rng.dirichlet(np.full(len(names), 0.8))
    return tuple(float(w) for w in weights)


def draw_cells(names: tuple[str, ...], weights: tuple[float, ...], n: int, rng: np.random.Generator) -> np.ndarray:
    """Family index (into ``names``) of ``n`` new cells."""
    return rng.choice(len(names), size=n, p=np.asarray(weights) / np.sum(weights)).astype(np.int64)


def shape_harmonics(shape: str, look: np.ndarray, roughness: float) -> tuple[np.ndarray, np.ndarray, float]:
    """Persistent boundary harmonics (amplitudes of k = 2..5, phases) and elongation factor of one outline."""
    amp = np.full(4, 0.3 * roughness)
    phase = look[:4] * 2.0 * np.pi
    elong = 1.0
    if shape == "elongated":
        elong = 1.5 + 0.9 * look[4]
    elif shape == "kidney":  # k = 2 and 3 in phase: one flank pulled in, the other out
        amp[:2] = (0.12 + 0.06 * look[4], 0.1 + 0.05 * look[5])
        phase[1] = 1.5 * phase[0] + math.pi
        elong = 1.2 + 0.3 * look[6]
    elif shape == "lobed":
        amp[1:3] = 0.1 + 0.08 * look[4:6]
    elif shape == "blebs":
        amp[3] = 0.08 + 0.06 * look[4]
        amp[2] = 0.04 + 0.04 * look[5]
    return amp, phase, elong


def _spots(un: np.ndarray, vn: np.ndarray, look: np.ndarray, count: int, sigma: float, reach: float) -> np.ndarray:
    """Sum of ``count`` Gaussian spots (peak 1) placed by ``look`` within ``reach`` of the cell centre."""
    out = np.zeros(un.shape, np.float32)
    for k in range(count):
        angle = 2.0 * math.pi * look[2 * k]
        radius = reach * math.sqrt(look[2 * k + 1])
        dist2 = (un - radius * math.cos(angle)) ** 2 + (vn - radius * math.sin(angle)) ** 2
        out += np.exp(-dist2 / (2.0 * sigma * sigma))
    return out


def pattern(name: str, un: np.ndarray, vn: np.ndarray, d: np.ndarray, fine: np.ndarray, coarse: np.ndarray,
            look: np.ndarray) -> np.ndarray:
    """Relative interior modulation of one cell (``1 + pattern`` multiplies its profile; >= -0.9).

    ``un``, ``vn``: pixel coordinates in units of the cell's semi-axes; ``d``: normalised distance (< 1
    inside); ``fine``, ``coarse``: texture samples at the pixels (mean 0, std 1); ``look``: the cell's random
    numbers.
    """
    strength = float(look[7])
    if name == "smooth":
        return np.zeros(un.shape, np.float32)
    if name == "speckle":
        out = (0.3 + 0.4 * strength) * fine
    elif name == "blobs":
        out = (0.35 + 0.45 * strength) * coarse
    elif name == "nucleoli":
        out = (1.0 + 1.5 * strength) * _spots(un, vn, look, 1 + int(3 * look[6]), 0.14, 0.5)
    elif name == "holes":
        out = -(0.6 + 0.3 * strength) * np.minimum(_spots(un, vn, look, 1 + int(3 * look[6]), 0.16, 0.45), 1.0)
    elif name == "rim":
        out = (0.8 + 1.0 * strength) * (np.minimum(d, 1.0) ** 3 - 0.45)
    elif name == "condensed":
        out = 0.7 * fine + 0.3 * coarse
    elif name == "halves":
        angle = 2.0 * math.pi * look[6]
        out = (0.25 + 0.35 * strength) * np.tanh((un * math.cos(angle) + vn * math.sin(angle)) / 0.15)
    elif name == "shadeoff":
        out = (0.5 + 0.4 * strength) * (np.minimum(d, 1.0) ** 2 - 0.7)
    elif name == "lens":
        out = (1.0 + 1.0 * strength) * _spots(un, vn, np.array([0.0, 0.0]), 1, 0.25, 0.0)
    else:
        raise CTCError(f"unknown appearance pattern {name!r}")
    return np.maximum(out, -0.9).astype(np.float32, copy=False)
