"""Rasterise the simulated cells into instance labels and render microscope images of three modalities.

Each cell is a star-convex shape: a superellipse (exponent ``point``: 2 = ellipse, ~1 = diamond) whose radius
is modulated by a few boundary harmonics, optionally with one end longer (``asym``) and with thin, dimmer tails
along its long axis (``tail``, phase contrast protrusions). For every pixel of a cell's bounding box the normalised distance
``d`` (< 1 inside) is computed with array arithmetic; a pixel covered by several cells goes to the cell with
the smallest ``d``, so touching cells get a clean shared border and masks never overlap. The optical models
then work on whole frames (Gaussian filters, gradient magnitude, noise), never pixel by pixel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ctc.synth.appearance import pattern
from ctc.synth.motion import FrameCells
from ctc.synth.presets import SequenceParams

TEXTURE_SIZE = 256  # a power of two: sampling wraps with a bit mask
TAIL_LENGTH = 1.5  # tails reach (1 + TAIL_LENGTH * tail) semi-axes from the centre


def make_texture(scale: float, rng: np.random.Generator) -> np.ndarray:
    """A periodic band-pass noise tile (mean 0, std 1): chromatin / cytoplasm granularity."""
    white = rng.normal(0.0, 1.0, (TEXTURE_SIZE, TEXTURE_SIZE))
    fine = ndi.gaussian_filter(white, scale, mode="wrap")
    coarse = ndi.gaussian_filter(white, 3.0 * scale, mode="wrap")
    tile = fine - 0.7 * coarse
    return ((tile - tile.mean()) / (tile.std() + 1e-12)).astype(np.float32)


def smooth_field(shape: tuple[int, int], cells: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random field in [-1, 1] varying over about ``shape / cells`` (uneven illumination)."""
    coarse = rng.uniform(-1.0, 1.0, (cells + 1, cells + 1))
    field = ndi.zoom(coarse, (shape[0] / (cells + 1), shape[1] / (cells + 1)), order=3, mode="nearest")
    field = field[: shape[0], : shape[1]]
    if field.shape != shape:  # zoom may round one pixel short
        field = np.pad(field, [(0, shape[0] - field.shape[0]), (0, shape[1] - field.shape[1])], mode="edge")
    span = np.abs(field).max() + 1e-12
    return (field / span).astype(np.float32)


def wide_blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur with a large ``sigma``, computed on a block-averaged copy (cost independent of sigma)."""
    factor = int(sigma // 3.0)
    if factor < 2:
        return ndi.gaussian_filter(image, sigma)
    h, w = image.shape
    ph, pw = -h % factor, -w % factor
    padded = np.pad(image, [(0, ph), (0, pw)], mode="reflect")
    small = padded.reshape(padded.shape[0] // factor, factor, padded.shape[1] // factor, factor).mean((1, 3))
    small = ndi.gaussian_filter(small, np.sqrt(max(sigma ** 2 - factor ** 2 / 4.0, 1.0)) / factor)
    ry = _interpolation_matrix(small.shape[0], factor, h)
    rx = _interpolation_matrix(small.shape[1], factor, w)
    return (ry @ small.astype(np.float32) @ rx.T).astype(image.dtype, copy=False)


def _interpolation_matrix(n: int, factor: int, size: int) -> np.ndarray:
    """Matrix (size, n) of linear interpolation from ``n`` block centres to ``size`` pixel positions."""
    pos = (np.arange(size, dtype=np.float32) + 0.5) / factor - 0.5
    pos = np.clip(pos, 0.0, n - 1.0)
    lo = np.minimum(np.floor(pos).astype(np.int64), n - 1)
    hi = np.minimum(lo + 1, n - 1)
    frac = pos - lo
    out = np.zeros((size, n), np.float32)
    out[np.arange(size), lo] += 1.0 - frac
    out[np.arange(size), hi] += frac
    return out


@dataclass
class Raster:
    """One frame's cells as arrays: what the modality models render."""

    labels: np.ndarray  # instance labels (simulation ids, int64)
    coverage: np.ndarray  # sum of the cells' soft masks (0.5 at the mask border)
    profile: np.ndarray  # brightness-weighted profile of the in-focus cells, interior patterns included
    textured: np.ndarray  # the profile times the sequence's texture tile
    defocused: np.ndarray  # profile of the out-of-focus cells (the renderer blurs it more)


@dataclass(frozen=True)
class Textures:
    """Periodic texture tiles of one sequence: generic grain, fine chromatin speckle, coarse blobs."""

    base: np.ndarray
    fine: np.ndarray
    coarse: np.ndarray


def rasterise(fc: FrameCells, shape: tuple[int, int], textures: Textures, patterns: tuple[str, ...] = ("smooth",),
              edge: float = 1.0, dome: float = 0.25) -> Raster:
    """Instance labels, coverage and brightness profiles of the cells of one frame.

    ``coverage`` is the sum of the cells' soft masks (0.5 at the mask border, ``edge`` pixels wide);
    ``profile`` weights each cell by its ``bright``, a dome (``1 - dome * d**2`` inside) and its interior
    pattern family (``patterns[fc.pattern]``, :mod:`ctc.synth.appearance`); ``textured`` is the profile times
    the texture tile sampled in the cell's own rotated frame, so the texture moves and turns with the cell.
    Out-of-focus cells go to ``defocused`` instead of ``profile``.
    """
    h, w = shape
    labels = np.zeros(shape, np.int64)
    best = np.full(shape, np.inf, np.float32)
    coverage = np.zeros(shape, np.float32)
    profile = np.zeros(shape, np.float32)
    textured = np.zeros(shape, np.float32)
    defocused = np.zeros(shape, np.float32)
    rows = np.arange(h, dtype=np.float32)
    cols = np.arange(w, dtype=np.float32)
    # per-cell scalars as Python floats: numpy scalar arithmetic would dominate the loop
    harm_cos = (fc.harm * np.cos(fc.phase)).tolist()
    harm_sin = (fc.harm * np.sin(fc.phase)).tolist()
    # axis-aligned half extents of the rotated shape (a superellipse lies inside its ellipse for exponents
    # <= 2 and at most 2**(1/2 - 1/p) outside it above), widened by the harmonics, plus the soft edge
    grow = (1.0 + fc.harm.sum(1)) * np.maximum(1.0, 2.0 ** (0.5 - 1.0 / fc.point))
    ca, sa = np.cos(fc.angle), np.sin(fc.angle)
    long = fc.a * (1.0 + np.abs(fc.asym)) * (1.0 + TAIL_LENGTH * fc.tail)
    reach_y = (grow * np.hypot(long * sa, fc.b * ca) + 1.0 + edge).tolist()
    reach_x = (grow * np.hypot(long * ca, fc.b * sa) + 1.0 + edge).tolist()
    cells = zip(fc.ids.tolist(), fc.y.tolist(), fc.x.tolist(), fc.a.tolist(), fc.b.tolist(), fc.angle.tolist(),
                fc.point.tolist(), fc.tail.tolist(), fc.asym.tolist(), fc.bright.tolist(), fc.tex.tolist(),
                fc.mitotic.tolist(), harm_cos, harm_sin, reach_y, reach_x, fc.pattern.tolist(), fc.look,
                fc.defocus.tolist())
    for (sid, cy, cx, a, b, angle, point, tail, asym, bright, tex, mitotic, hc, hs, ry, rx, family, look,
         blurred) in cells:
        y0, y1 = max(0, math.floor(cy - ry)), min(h, math.ceil(cy + ry) + 1)
        x0, x1 = max(0, math.floor(cx - rx)), min(w, math.ceil(cx + rx) + 1)
        if y0 >= y1 or x0 >= x1:
            continue
        dy = (rows[y0:y1] - cy)[:, None]
        dx = (cols[x0:x1] - cx)[None, :]
        cos, sin = math.cos(angle), math.sin(angle)
        u = dx * cos + dy * sin
        v = dy * cos - dx * sin
        if asym != 0.0:  # one end longer than the other (teardrop, one long tail)
            ua = u / np.where(u > 0.0, a * (1.0 + asym), a * (1.0 - asym))
        else:
            ua = u * (1.0 / a)
        vb = v * (1.0 / b)
        ub = ua * (1.0 / (1.0 - 0.3 * tail)) if tail > 0.0 else ua  # the body is shorter than the tails
        rho = (np.abs(ub) ** point + np.abs(vb) ** point) ** (1.0 / point)
        # boundary harmonics k = 2.. via the angle's cos / sin and the multiple-angle recurrence
        norm = 1.0 / (np.sqrt(ub * ub + vb * vb) + 1e-6)
        c1, s1 = ub * norm, vb * norm
        ck, sk = c1 * c1 - s1 * s1, 2.0 * c1 * s1
        f = 1.0 + hc[0] * ck - hs[0] * sk
        for k in range(1, len(hc)):
            ck, sk = ck * c1 - sk * s1, sk * c1 + ck * s1
            f += hc[k] * ck - hs[k] * sk
        d = rho / f
        scale: float | np.ndarray = math.sqrt(a * b) / edge  # pixels per unit of d across the border
        shade: float | np.ndarray = bright
        if tail > 0.0:  # thin tapering tails along the long axis: a narrow diamond, dimmer than the body
            width = 0.25 + 0.2 * (1.0 - tail)
            d_tail = np.abs(ua) * (1.0 / (1.0 + TAIL_LENGTH * tail)) + np.abs(vb) * (1.0 / width)
            in_tail = d_tail < d
            d = np.where(in_tail, d_tail, d)
            scale = np.where(in_tail, width * b / edge, scale)
            shade = np.where(in_tail, 0.6 * bright, bright)
        sub = (slice(y0, y1), slice(x0, x1))
        win = (d < 1.0) & (d < best[sub])
        labels[sub][win] = sid
        best[sub][win] = d[win]
        soft = np.minimum(np.maximum(0.5 + (1.0 - d) * scale, 0.0), 1.0)
        soft = soft * soft * (3.0 - 2.0 * soft)
        coverage[sub] += soft
        ty = (v + tex[0]).astype(np.int32) & (TEXTURE_SIZE - 1)
        tx = (u + tex[1]).astype(np.int32) & (TEXTURE_SIZE - 1)
        look_pattern = pattern(patterns[family], ua, vb, d, textures.fine[ty, tx], textures.coarse[ty, tx], look)
        soft *= (1.0 - dome * np.minimum(d, 1.0) ** 2) * shade * (1.0 + look_pattern)
        (defocused if blurred else profile)[sub] += soft
        textured[sub] += soft * textures.base[ty, tx] * (1.0 + mitotic)
    return Raster(labels, coverage, profile, textured, defocused)


class Renderer:
    """Turns cell profiles into images of one modality; fixed per sequence (illumination, artefacts)."""

    def __init__(self, params: SequenceParams, shape: tuple[int, int], rng: np.random.Generator) -> None:
        self.p = params
        self.dome = {"fluo": 0.25, "phc": 0.6, "bf": 0.1}[params.preset]
        self.shape = shape
        self.rng = rng
        self.textures = Textures(make_texture(params.texture_scale, rng), make_texture(0.7, rng),
                                 make_texture(max(2.0, params.radius / 4.0), rng))
        coarse = max(1, int(round(max(shape) / 160.0)))
        self.illum = 1.0 + params.illumination * (0.6 * smooth_field(shape, coarse + 1, rng)
                                                  + 0.4 * self._vignette(shape, rng))
        self.mottle = smooth_field(shape, max(2, int(max(shape) / 24)), rng)  # background structure
        self.rings = self._rings(shape, rng) if params.preset == "phc" else np.zeros(shape, np.float32)
        self.specks = self._specks(shape, rng) + self._debris(shape, params.debris, rng)
        self.ramp = params.gradient * self._ramp(shape, rng)
        self.hot = self._hot_pixels(shape, params.hot_pixels, rng)
        self.defocus_sigma = float(rng.uniform(1.5, 3.5))

    @staticmethod
    def _vignette(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        cy, cx = rng.uniform(0.2, 0.8) * shape[0], rng.uniform(0.2, 0.8) * shape[1]
        yy, xx = np.ogrid[: shape[0], : shape[1]]
        r2 = ((yy - cy) ** 2 + (xx - cx) ** 2) / float(max(shape) ** 2)
        return (1.0 - 2.0 * r2).clip(-1.0, 1.0).astype(np.float32)

    @staticmethod
    def _ramp(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """A linear ramp from 0 to 1 across the frame in a random direction."""
        angle = rng.uniform(0.0, 2.0 * np.pi)
        yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
        ramp = yy * np.float32(np.sin(angle)) + xx * np.float32(np.cos(angle))
        return ((ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)).astype(np.float32)

    @staticmethod
    def _rings(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """Faint circular artefacts (dust / condensation out of focus), as in PhC-C2DL-PSC."""
        out = np.zeros(shape, np.float32)
        yy, xx = np.ogrid[: shape[0], : shape[1]]
        for _ in range(rng.poisson(shape[0] * shape[1] / 200_000.0)):
            cy, cx = rng.uniform(0, shape[0]), rng.uniform(0, shape[1])
            radius, width = rng.uniform(25.0, 60.0), rng.uniform(2.0, 5.0)
            dist = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2)
            out += rng.uniform(0.5, 1.0) * np.exp(-(((dist - radius) / width) ** 2))
        return out

    @staticmethod
    def _specks(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
        """A few small unlabelled debris particles."""
        out = np.zeros(shape, np.float32)
        n = rng.poisson(shape[0] * shape[1] / 40_000.0)
        out[rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)] = rng.uniform(0.5, 2.0, n)
        return ndi.gaussian_filter(out, 0.8) * 6.0

    @staticmethod
    def _debris(shape: tuple[int, int], density: float, rng: np.random.Generator) -> np.ndarray:
        """Larger unlabelled particles (2-6 px, irregular, as bright as a dim cell): things that are not cells."""
        seeds = np.zeros(shape, np.float32)
        n = rng.poisson(density * shape[0] * shape[1] / 100_000.0)
        for _ in range(n):
            y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
            length = int(rng.integers(1, 5))
            dy, dx = rng.integers(-1, 2, length), rng.integers(-1, 2, length)
            ys = np.clip(y + np.cumsum(dy), 0, shape[0] - 1)
            xs = np.clip(x + np.cumsum(dx), 0, shape[1] - 1)
            seeds[ys, xs] = rng.uniform(0.2, 0.8)
        return ndi.gaussian_filter(seeds, 1.2) * 8.0

    @staticmethod
    def _hot_pixels(shape: tuple[int, int], per_megapixel: float, rng: np.random.Generator) -> np.ndarray:
        """Fixed hot pixels (per sequence): strength in units of the cell contrast."""
        out = np.zeros(shape, np.float32)
        n = rng.poisson(per_megapixel * shape[0] * shape[1] / 1e6)
        out[rng.integers(0, shape[0], n), rng.integers(0, shape[1], n)] = rng.uniform(0.5, 4.0, n)
        return out

    def render(self, raster: Raster, t: int) -> np.ndarray:
        """The image of frame ``t`` from the output of :func:`rasterise` (dtype of the preset)."""
        model = {"fluo": self._fluo, "phc": self._phc, "bf": self._bf}[self.p.preset]
        profile = raster.profile
        if raster.defocused.any():  # out-of-focus cells: wider blur, part of the light spread out
            profile = profile + 0.8 * ndi.gaussian_filter(raster.defocused, self.defocus_sigma)
        image = model(raster.coverage, profile, raster.textured, t)
        return image

    def _speckle(self, signal: np.ndarray) -> np.ndarray:
        """Multiplicative noise (laser speckle, uneven dye): ``signal * (1 + speckle * N(0, 1))``."""
        if self.p.speckle <= 0.0:
            return signal
        grain = self.rng.standard_normal(self.shape, np.float32)
        return signal * np.maximum(1.0 + np.float32(self.p.speckle) * grain, 0.0)

    def _fluo(self, coverage: np.ndarray, profile: np.ndarray, textured: np.ndarray, t: int) -> np.ndarray:
        p = self.p
        cells = profile + p.texture_contrast * textured
        haze = (0.04 + p.haze) * wide_blur(profile, 3.0 * p.radius)  # out-of-focus glow
        signal = np.maximum(cells, 0.0) + haze + 0.3 * self.specks
        signal *= self.illum * np.float32(p.contrast * np.exp(-p.bleaching * t))
        signal = self._speckle(ndi.gaussian_filter(signal, p.blur))
        signal += np.float32(p.contrast) * self.ramp  # autofluorescence gradient of the dish
        photons = self._shot_noise(np.maximum(signal, 0.0) * np.float32(p.gain)) * np.float32(1.0 / p.gain)
        photons += self.rng.standard_normal(self.shape, np.float32) * np.float32(p.contrast / p.snr)
        photons += np.float32(p.background + 0.5) + np.float32(p.contrast) * self.hot  # + 0.5: the cast rounds
        return np.clip(photons, 0.0, 65535.0).astype(np.uint16)

    def _shot_noise(self, expected: np.ndarray) -> np.ndarray:
        """Poisson counts for ``expected`` photons: exact below 30, Gaussian N(lambda, lambda) above (fast)."""
        out = expected + np.sqrt(expected) * self.rng.standard_normal(expected.shape, np.float32)
        low = expected < 30.0
        out[low] = self.rng.poisson(expected[low])
        return out

    def _phc(self, coverage: np.ndarray, profile: np.ndarray, textured: np.ndarray, t: int) -> np.ndarray:
        p = self.p
        body = profile + p.texture_contrast * textured  # optical thickness, brighter (PSC) or darker (U373)
        halo = np.clip(ndi.gaussian_filter(coverage, 1.0 + 0.15 * p.radius) - coverage, 0.0, None)
        image = p.contrast * (p.body * body + 3.0 * p.halo * halo + 0.12 * self.rings - 0.1 * self.specks)
        image = p.background * self.illum + image + 0.015 * p.background * self.mottle
        image += p.contrast * (self.ramp + self.hot)
        image = self._speckle(ndi.gaussian_filter(image, p.blur))
        image += self.rng.normal(0.0, p.contrast / p.snr, self.shape)
        return np.clip(np.round(image), 0, 255).astype(np.uint8)

    def _bf(self, coverage: np.ndarray, profile: np.ndarray, textured: np.ndarray, t: int) -> np.ndarray:
        p = self.p
        width = 0.9 + 0.08 * p.radius
        edge = ndi.gaussian_gradient_magnitude(coverage, width) * (2.5 * width)  # ~1 on a cell border
        halo = ndi.gaussian_filter(coverage, 2.0 * width) - ndi.gaussian_filter(coverage, width)
        inner = p.body * (profile + p.texture_contrast * textured)
        image = p.contrast * (inner - p.rim * edge + p.halo * 2.0 * np.clip(halo, 0.0, None) - 0.5 * self.specks)
        image = p.background * (self.illum + 0.005 * self.mottle) + image
        image += p.contrast * (self.ramp + self.hot)
        image = self._speckle(ndi.gaussian_filter(image, p.blur))
        image += self.rng.normal(0.0, p.contrast / p.snr, self.shape)
        return np.clip(np.round(image), 0, 65535).astype(np.uint16)
