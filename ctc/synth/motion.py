"""Cell population dynamics: random walk with drift, growth, deformation, contact repulsion and divisions.

The population lives in a periodic field larger than the image (a margin on every side), so cells enter and
leave the view naturally. The state is a struct of arrays (one row per living cell) and every step is vectorised.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields, replace

import numpy as np
from scipy.spatial import cKDTree

from ctc.synth.appearance import LOOK_PARAMS, draw_cells, shape_harmonics
from ctc.synth.presets import SequenceParams

logger = logging.getLogger(__name__)

N_HARMONICS = 4  # boundary harmonics 2..5 of each cell (harmonic 1 would only shift the cell)
HARMONIC_WEIGHT = np.array([1.0, 0.6, 0.4, 0.3])  # higher harmonics are weaker: smooth outlines
MITOSIS_FRAMES = 2  # frames before a division in which the mother rounds up and condenses
SEPARATION_FRAMES = 3  # frames over which two daughters move apart


@dataclass
class Cells:
    """State of all living cells; every array has one row per cell."""

    ids: np.ndarray  # int64 simulation ids (unique over the whole sequence)
    y: np.ndarray
    x: np.ndarray
    vy: np.ndarray
    vx: np.ndarray
    size: np.ndarray  # radius of the grown cell (semi-axis mean), fixed per cell
    elong: np.ndarray  # long / short semi-axis
    angle: np.ndarray
    point: np.ndarray  # shape exponent
    tail: np.ndarray  # share of the long axis in thin tails (protrusions)
    asym: np.ndarray  # -1..1: one end longer than the other (teardrops)
    harm: np.ndarray  # (n, K) boundary harmonic amplitudes
    phase: np.ndarray  # (n, K) their phases
    bright: np.ndarray  # base brightness factor
    speed: np.ndarray  # random walk step (pixels)
    age: np.ndarray  # frames since birth
    cycle: np.ndarray  # frames from birth to full size
    due: np.ndarray  # age at which the cell divides (= cycle, later if the field is crowded)
    tex: np.ndarray  # (n, 2) offset into the texture tile
    sep_y: np.ndarray  # separation velocity of a young daughter
    sep_x: np.ndarray
    newborn: np.ndarray  # 1 for a daughter, 0 for a cell present from the start
    pattern: np.ndarray  # index into the sequence's pattern families (inherited by daughters)
    shape: np.ndarray  # index into the sequence's shape families (inherited by daughters)
    look: np.ndarray  # (n, LOOK_PARAMS) random numbers placing spots, orienting halves, setting strengths
    base_harm: np.ndarray  # (n, K) persistent harmonic amplitudes of the cell's outline family
    defocus: np.ndarray  # 1 for a slightly out-of-focus cell

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, index: np.ndarray) -> Cells:
        """The cells selected by an index or boolean array."""
        return Cells(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def concat(parts: list[Cells]) -> Cells:
        """All cells of several states."""
        return Cells(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(Cells)})


@dataclass(frozen=True)
class FrameCells:
    """What the renderer needs about the cells of one frame (arrays with one row per cell)."""

    ids: np.ndarray
    y: np.ndarray
    x: np.ndarray
    a: np.ndarray  # long semi-axis (pixels)
    b: np.ndarray  # short semi-axis
    angle: np.ndarray
    point: np.ndarray
    tail: np.ndarray
    asym: np.ndarray
    harm: np.ndarray
    phase: np.ndarray
    bright: np.ndarray  # brightness factor, mitosis included
    tex: np.ndarray
    mitotic: np.ndarray  # 0..1, condensed / rounded state around a division
    pattern: np.ndarray
    look: np.ndarray
    defocus: np.ndarray


@dataclass
class Simulation:
    """The cells of every frame plus the lineage of the simulation ids."""

    frames: list[FrameCells] = field(default_factory=list)
    parents: dict[int, int] = field(default_factory=dict)  # daughter id -> mother id
    births: dict[int, int] = field(default_factory=dict)  # daughter id -> first frame


def _new_cells(p: SequenceParams, n: int, y: np.ndarray, x: np.ndarray, rng: np.random.Generator,
               first_id: int) -> Cells:
    """``n`` fresh cells at the given positions with individual size, shape, brightness and motility."""
    size = p.radius * np.exp(rng.normal(0.0, 0.15, n))
    elong = 1.0 + (p.elongation - 1.0) * np.exp(rng.normal(0.0, 0.35, n))
    fast = rng.random(n) < p.fast_fraction
    speed = p.speed * size * np.exp(rng.normal(0.0, 0.3, n)) * np.where(fast, p.fast_factor, 1.0)
    dim = rng.random(n) < p.dim_fraction
    bright = np.exp(rng.normal(0.0, p.brightness_spread, n)) * np.where(dim, rng.uniform(0.08, 0.4, n), 1.0)
    cycle = p.cycle * np.exp(rng.normal(0.0, 0.25, n))
    pattern = draw_cells(p.patterns, p.pattern_weights, n, rng)
    shape = draw_cells(p.shapes, p.shape_weights, n, rng)
    look = rng.random((n, LOOK_PARAMS))
    base, phase, elong_factor = _outlines(p, shape, look)
    condensed = np.array([p.patterns[i] == "condensed" for i in pattern], bool)
    bright = np.where(condensed, bright * rng.uniform(2.0, 3.0, n), bright)
    size = np.where(condensed, 0.75 * size, size)
    return Cells(
        ids=np.arange(first_id, first_id + n, dtype=np.int64),
        y=y.astype(float), x=x.astype(float),
        vy=rng.normal(0.0, 1.0, n) * speed, vx=rng.normal(0.0, 1.0, n) * speed,
        size=size, elong=elong * elong_factor, angle=rng.uniform(0.0, np.pi, n),
        point=np.clip(p.pointiness + rng.normal(0.0, 0.12, n), 0.8, 3.0),
        tail=np.where(p.tail > 0.0, np.clip(p.tail + rng.normal(0.0, 0.15, n), 0.0, 0.85), 0.0),
        asym=rng.uniform(-0.6, 0.6, n) * p.tail,
        harm=base + np.abs(rng.normal(0.0, p.roughness, (n, N_HARMONICS))) * HARMONIC_WEIGHT,
        phase=phase,
        bright=bright, speed=speed,
        age=rng.uniform(0.0, 1.0, n) * cycle, cycle=cycle, due=cycle.copy(),
        tex=rng.uniform(0.0, 4096.0, (n, 2)),
        sep_y=np.zeros(n), sep_x=np.zeros(n), newborn=np.zeros(n),
        pattern=pattern, shape=shape, look=look, base_harm=base,
        defocus=(rng.random(n) < p.defocus).astype(float),
    )


def _outlines(p: SequenceParams, shape: np.ndarray, look: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Persistent harmonic amplitudes, phases and elongation factors of cells of the given shape families."""
    n = len(shape)
    base, phase, factor = np.zeros((n, N_HARMONICS)), np.zeros((n, N_HARMONICS)), np.ones(n)
    for i in range(n):
        base[i], phase[i], factor[i] = shape_harmonics(p.shapes[shape[i]], look[i], p.roughness)
    return base, phase, factor


def _snapshot(c: Cells) -> FrameCells:
    """Geometry and brightness of the cells as seen in one frame."""
    grow = np.sqrt(0.5 + 0.5 * np.clip(c.age / c.cycle, 0.0, 1.0))  # area doubles over the cycle
    to_div = c.due - c.age  # frames until division
    mitotic = np.clip((MITOSIS_FRAMES + 1 - to_div) / (MITOSIS_FRAMES + 1), 0.0, 1.0)
    after = np.where(c.newborn > 0, np.clip(1.0 - c.age / (SEPARATION_FRAMES + 1), 0.0, 1.0), 0.0)
    mitotic = np.maximum(mitotic, after)
    elong = 1.0 + (c.elong - 1.0) * (1.0 - 0.8 * mitotic)
    r = c.size * grow * (1.0 - 0.2 * mitotic)
    a = r * np.sqrt(elong)
    b = r / np.sqrt(elong)
    bright = c.bright * (1.0 + 0.3 * np.clip(c.age / c.cycle, 0.0, 1.0)) * (1.0 + 0.9 * mitotic)
    return FrameCells(ids=c.ids.copy(), y=c.y.copy(), x=c.x.copy(), a=a, b=b, angle=c.angle.copy(),
                      point=c.point.copy(), tail=c.tail * (1.0 - mitotic), asym=c.asym * (1.0 - mitotic),
                      harm=c.harm * (1.0 - 0.7 * mitotic[:, None]), phase=c.phase.copy(),
                      bright=bright, tex=c.tex.copy(), mitotic=mitotic, pattern=c.pattern.copy(),
                      look=c.look.copy(), defocus=c.defocus.copy())


def _divide(p: SequenceParams, c: Cells, sim: Simulation, frame: int, next_id: int, cap: int,
            rng: np.random.Generator) -> tuple[Cells, int]:
    """Replace every mother whose cycle is over by two daughters (not above ``cap`` cells)."""
    ready = np.flatnonzero(c.age >= c.due)
    if len(ready) == 0:
        return c, next_id
    room = max(0, cap - len(c))
    blocked = ready[room:]  # crowded: these wait and try again later
    c.due[blocked] = c.age[blocked] + c.cycle[blocked] * rng.uniform(0.2, 0.5, len(blocked))
    ready = ready[:room]
    if len(ready) == 0:
        return c, next_id
    keep = np.ones(len(c), bool)
    keep[ready] = False
    mothers = c.take(ready)
    n = len(ready)
    daughters = []
    r = mothers.size * 0.85 * np.sqrt(mothers.elong)
    for sign in (1.0, -1.0):
        d = replace(mothers)
        d.ids = np.arange(next_id, next_id + n, dtype=np.int64)
        next_id += n
        dy, dx = np.sin(mothers.angle), np.cos(mothers.angle)
        d.y = mothers.y + sign * 0.3 * r * dy
        d.x = mothers.x + sign * 0.3 * r * dx
        d.sep_y = sign * 0.45 * r * dy
        d.sep_x = sign * 0.45 * r * dx
        d.age = np.zeros(n)
        d.cycle = mothers.cycle * np.exp(rng.normal(0.0, 0.15, n))
        d.due = d.cycle.copy()
        d.bright = mothers.bright * np.exp(rng.normal(0.0, 0.1, n))
        d.look = rng.random((n, LOOK_PARAMS))
        d.base_harm, d.phase, _ = _outlines(p, mothers.shape, d.look)
        d.harm = d.base_harm + np.abs(rng.normal(0.0, p.roughness, (n, N_HARMONICS))) * HARMONIC_WEIGHT
        d.angle = mothers.angle + rng.normal(0.0, 0.4, n)
        d.tex = rng.uniform(0.0, 4096.0, (n, 2))
        d.newborn = np.ones(n)
        for m, di in zip(mothers.ids, d.ids):
            sim.parents[int(di)] = int(m)
            sim.births[int(di)] = frame
        daughters.append(d)
    return Cells.concat([c.take(keep)] + daughters), next_id


def _repel(c: Cells) -> tuple[np.ndarray, np.ndarray]:
    """Displacements that push overlapping cells apart (soft contact, cells may still touch)."""
    dy = np.zeros(len(c))
    dx = np.zeros(len(c))
    if len(c) < 2:
        return dy, dx
    reach = c.size * (0.75 + 0.25 * np.sqrt(c.elong))
    tree = cKDTree(np.column_stack([c.y, c.x]))
    pairs = tree.query_pairs(r=2.0 * float(reach.max()), output_type="ndarray")
    if len(pairs) == 0:
        return dy, dx
    i, j = pairs[:, 0], pairs[:, 1]
    vy, vx = c.y[i] - c.y[j], c.x[i] - c.x[j]
    dist = np.hypot(vy, vx) + 1e-6
    overlap = 0.9 * (reach[i] + reach[j]) - dist
    hit = overlap > 0
    i, j, vy, vx, dist, overlap = i[hit], j[hit], vy[hit], vx[hit], dist[hit], overlap[hit]
    push = 0.25 * overlap / dist
    np.add.at(dy, i, push * vy)
    np.add.at(dx, i, push * vx)
    np.add.at(dy, j, -push * vy)
    np.add.at(dx, j, -push * vx)
    return dy, dx


def simulate(p: SequenceParams, frames: int, size: tuple[int, int], rng: np.random.Generator) -> Simulation:
    """Simulate ``frames`` frames of a cell population seen through a ``size`` (H, W) window."""
    h, w = size
    margin = 4.5 * p.radius * np.sqrt(p.elongation) * (1.0 + 1.5 * p.tail) + 4.0
    lo_y, hi_y, lo_x, hi_x = -margin, h + margin, -margin, w + margin
    area = (hi_y - lo_y) * (hi_x - lo_x)
    n0 = max(2, int(round(p.density * area / (np.pi * p.radius ** 2))))
    cap = int(1.6 * n0) + 2
    cells = _new_cells(p, n0, rng.uniform(lo_y, hi_y, n0), rng.uniform(lo_x, hi_x, n0), rng, 1)
    next_id = n0 + 1
    angle = rng.uniform(0.0, 2.0 * np.pi)
    drift = p.drift * p.radius * np.array([np.sin(angle), np.cos(angle)])
    rho = 0.7  # velocity persistence of the random walk
    sim = Simulation()
    for _ in range(6):  # settle the initial overlaps before the first frame
        dy, dx = _repel(cells)
        cells.y += dy
        cells.x += dx
    for t in range(frames):
        sim.frames.append(_snapshot(cells))
        if t == frames - 1:
            break
        cells, next_id = _divide(p, cells, sim, t + 1, next_id, cap, rng)
        n = len(cells)
        noise = rng.normal(0.0, 1.0, (2, n)) * np.sqrt(1.0 - rho ** 2)
        cells.vy = rho * cells.vy + cells.speed * noise[0]
        cells.vx = rho * cells.vx + cells.speed * noise[1]
        dy, dx = _repel(cells)
        sep = np.where(cells.newborn * (cells.age < SEPARATION_FRAMES) > 0, 1.0, 0.0)
        cells.y += cells.vy + drift[0] + dy + sep * cells.sep_y
        cells.x += cells.vx + drift[1] + dx + sep * cells.sep_x
        # deformation: shape harmonics, orientation and elongation wander
        kick = rng.normal(0.0, 0.375 * p.roughness, cells.harm.shape) * HARMONIC_WEIGHT
        cells.harm = np.abs(cells.base_harm + 0.85 * (cells.harm - cells.base_harm) + kick)
        cells.phase += rng.normal(0.0, 0.15, cells.phase.shape)
        cells.angle += rng.normal(0.0, 0.08, n)
        cells.elong = np.clip(cells.elong * np.exp(rng.normal(0.0, 0.04, n)), 1.0, 5.0)
        cells.bright *= np.exp(rng.normal(0.0, 0.02, n))
        cells.age += 1.0
        # the field is periodic: a cell drifting out on one side comes back on the other, out of view
        # (the margin exceeds a cell's extent), so density stays even under drift
        cells.y = lo_y + (cells.y - lo_y) % (hi_y - lo_y)
        cells.x = lo_x + (cells.x - lo_x) % (hi_x - lo_x)
    logger.debug("simulated %d frames, %d cells at the end, %d divisions", frames, len(cells), len(sim.parents))
    return sim
