"""Out-of-distribution fluorescent nuclei: a small CTC dataset rendered independently of ``ctc/synth``.

The same kind of object as ``embedtrack synth --preset fluo`` (round nuclei, some dividing, moving slowly), but
drawn by different rules, to check how a model trained on one generator segments another's cells (paper §3.3,
clustering; §4 evaluation on the CTC data):

* wobbly ellipses (3 angular harmonics), overlaps resolved by the smaller normalised radius;
* one internal texture per nucleus, drawn in the nucleus's own frame so it moves with it: fine chromatin
  speckle, coarse blobs, bright nucleoli with dark holes, a bright rim around a dim interior, or two uneven
  halves;
* brightness spread over a factor of 10 between nuclei; a 0.8 px optical blur;
* Poisson photon noise with a gain, Gaussian read noise and a camera offset, stored as uint16.

Ground truth goes through :func:`ctc.synth.gt.build_ground_truth` (largest piece per label, no gaps in tracks,
parents of daughters). Usage::

    python benchmarks/ood_nuclei.py OUT [--name OOD-N2DH] [--frames 12] [--size 384] [--cells 45] [--seed 7]
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ctc.io import TRACK_FILE_GT, default_ndigits, frame_name, write_tiff, write_track_file
from ctc.synth.gt import build_ground_truth

TEXTURES = ("speckle", "blobs", "nucleoli", "rim", "halves")


@dataclass
class Nucleus:
    cy: float
    cx: float
    a: float  # semi-axes (px)
    b: float
    angle: float
    wobble: np.ndarray  # amplitudes of the harmonics 2, 3, 4
    phase: np.ndarray
    brightness: float
    texture: np.ndarray  # (2R+1)^2 multiplicative pattern centred on the nucleus
    vel: np.ndarray = field(default_factory=lambda: np.zeros(2))


def _texture(kind: str, r: int, rng: np.random.Generator) -> np.ndarray:
    """A multiplicative intensity pattern of size ``(2r+1)^2`` (about 1 on average)."""
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1].astype(float)
    rad = np.hypot(yy, xx) / r
    if kind == "speckle":
        return 1.0 + 0.9 * np.tanh(2.5 * ndi.gaussian_filter(rng.normal(size=yy.shape), 0.8) / 0.3)
    if kind == "blobs":
        field_ = ndi.gaussian_filter(rng.normal(size=yy.shape), r / 5)
        return 0.35 + 1.3 * (field_ > np.quantile(field_, 0.5))
    if kind == "nucleoli":
        tex = np.full(yy.shape, 0.8)
        for bright in rng.random(rng.integers(3, 6)) < 0.5:
            y, x = rng.uniform(-0.55, 0.55, 2) * r
            tex[np.hypot(yy - y, xx - x) < rng.uniform(0.12, 0.25) * r] = 2.5 if bright else 0.08
        return tex
    if kind == "rim":
        return 0.25 + 1.8 * np.clip(rad - 0.45, 0, None) / 0.55
    theta = rng.uniform(0, np.pi)
    return np.where(np.cos(theta) * yy + np.sin(theta) * xx > 0, 1.6, 0.45)


def _new_nucleus(cy: float, cx: float, rng: np.random.Generator, scale: float = 1.0) -> Nucleus:
    a, b = rng.uniform(10, 16) * scale, rng.uniform(8, 13) * scale
    r = int(np.ceil(max(a, b) * 1.25)) + 1
    return Nucleus(cy, cx, a, b, rng.uniform(0, np.pi), rng.uniform(0, 0.08, 3), rng.uniform(0, 2 * np.pi, 3),
                   float(np.exp(rng.uniform(np.log(0.1), 0.0))), _texture(str(rng.choice(TEXTURES)), r, rng),
                   rng.normal(0, 1.0, 2))


def _rho(n: Nucleus, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Normalised radius of the wobbly ellipse at offsets ``yy, xx`` from the centre (< 1 inside)."""
    c, s = np.cos(n.angle), np.sin(n.angle)
    u, v = c * yy + s * xx, -s * yy + c * xx
    phi = np.arctan2(v, u)
    wob = 1.0 + sum(w * np.cos(k * phi + p) for k, w, p in zip((2, 3, 4), n.wobble, n.phase))
    return np.hypot(u / n.a, v / n.b) / wob


def _render(cells: dict[int, Nucleus], shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Ideal intensity and simulation-id labels of one frame."""
    best = np.full(shape, 1.0)
    labels = np.zeros(shape, np.int32)
    image = np.zeros(shape)
    for sid, n in cells.items():
        r = n.texture.shape[0] // 2
        iy, ix = int(round(n.cy)), int(round(n.cx))
        y0, y1, x0, x1 = max(iy - r, 0), min(iy + r + 1, shape[0]), max(ix - r, 0), min(ix + r + 1, shape[1])
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1]
        rho = _rho(n, yy - n.cy, xx - n.cx)
        win = rho < best[y0:y1, x0:x1]
        tex = n.texture[y0 - iy + r:y1 - iy + r, x0 - ix + r:x1 - ix + r]
        best[y0:y1, x0:x1][win] = rho[win]
        labels[y0:y1, x0:x1][win] = sid
        image[y0:y1, x0:x1][win] = n.brightness * tex[win]
    return ndi.gaussian_filter(image, 0.8), labels


def _camera(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Poisson-Gaussian noise: ~300 photons at full brightness, gain 2, read noise 6, offset 100."""
    photons = rng.poisson(np.clip(image, 0, None) * 300.0 + 5.0)
    counts = 100.0 + 2.0 * photons + rng.normal(0, 6.0, image.shape)
    return np.clip(np.rint(counts), 0, 65535).astype(np.uint16)


def simulate(frames: int, shape: tuple[int, int], n_cells: int, seed: int
             ) -> tuple[list[np.ndarray], list[np.ndarray], dict[int, int], dict[int, int]]:
    """Raw frames, simulation-id labels, parents (daughter -> mother) and births (daughter -> frame)."""
    rng = np.random.default_rng(seed)
    cells: dict[int, Nucleus] = {}
    while len(cells) < n_cells:
        y, x = rng.uniform(12, shape[0] - 12), rng.uniform(12, shape[1] - 12)
        if all(np.hypot(y - c.cy, x - c.cx) > 30 for c in cells.values()) or rng.random() < 0.002:
            cells[len(cells) + 1] = _new_nucleus(y, x, rng)
    parents: dict[int, int] = {}
    births: dict[int, int] = {}
    images, raw = [], []
    for t in range(frames):
        if t:
            for sid in [s for s in cells if rng.random() < 0.02]:
                mother = cells.pop(sid)
                axis = rng.normal(size=2)
                axis *= 0.6 * mother.a / np.linalg.norm(axis)
                for sign in (-1, 1):
                    new = len(parents) + n_cells + 1
                    cells[new] = _new_nucleus(mother.cy + sign * axis[0], mother.cx + sign * axis[1], rng, 0.75)
                    parents[new], births[new] = sid, t
            for n in cells.values():
                n.vel = 0.7 * n.vel + rng.normal(0, 0.8, 2)
                n.cy, n.cx, n.angle = n.cy + n.vel[0], n.cx + n.vel[1], n.angle + rng.normal(0, 0.05)
        ideal, labels = _render(cells, shape)
        images.append(_camera(ideal, rng))
        raw.append(labels)
    return images, raw, parents, births


def write(out: Path, name: str = "OOD-N2DH", frames: int = 12, size: int = 384, n_cells: int = 45,
          seed: int = 7) -> Path:
    """Write ``out/name/01`` (raw) and ``01_GT/{SEG,TRA}`` (every frame annotated)."""
    images, raw, parents, births = simulate(frames, (size, size), n_cells, seed)
    masks, tracks = build_ground_truth(raw, parents, births)
    root = Path(out) / name
    nd = default_ndigits(frames)
    dirs = {k: root / sub for k, sub in (("raw", "01"), ("seg", "01_GT/SEG"), ("tra", "01_GT/TRA"))}
    for folder in dirs.values():
        folder.mkdir(parents=True, exist_ok=False)
    for t, (image, mask) in enumerate(zip(images, masks)):
        write_tiff(dirs["raw"] / frame_name("t", t, nd), image)
        write_tiff(dirs["seg"] / frame_name("man_seg", t, nd), mask)
        write_tiff(dirs["tra"] / frame_name("man_track", t, nd), mask)
    write_track_file(dirs["tra"] / TRACK_FILE_GT, tracks)
    return root


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--name", default="OOD-N2DH")
    ap.add_argument("--frames", type=int, default=12)
    ap.add_argument("--size", type=int, default=384)
    ap.add_argument("--cells", type=int, default=45)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    print(write(a.out, a.name, a.frames, a.size, a.cells, a.seed))


if __name__ == "__main__":
    main()
