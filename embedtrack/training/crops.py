"""Crop pairs (t, t-1) for training and validation, with augmentation (paper §4.3, and beyond it).

Geometric augmentations act on both frames and both label images alike (scale, small elastic deformation,
90° rotations, flips): one coordinate map is applied to the four arrays, so the targets the losses derive
from the labels follow every transform: offsets are never stored, their axes and signs come out of the
transformed geometry. A random extra shift of the t-1 window against the t window simulates faster motion.
Intensity augmentations (CLAHE, gamma, contrast, a low-frequency multiplicative field, blur) are drawn once
per pair and applied to both frames; texture and additive noise are drawn per frame, as a camera would. Two
act on the cells themselves, as sequences of one dataset differ: a per-cell gain (the same for a track in both
frames: dim and bright nuclei side by side) and a dimmed body (a strong gamma that leaves the brightest
chromatin spots bright and pushes a nucleus's body down towards the background). Camera noise (Poisson-Gaussian)
is drawn to reach a chosen body SNR of the cells (down to 1, as dim sequences of one dataset show), after which
each frame is normalised again as inference would normalise it; the zoom reaches 0.5-2.5x.
Beyond §4.3 they exist so that a model learns cells, not the one renderer that made its training data.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from scipy import ndimage
from skimage import exposure
from skimage.segmentation import expand_labels
from torch.utils.data import Dataset

from ctc.synth.render import smooth_field
from embedtrack.training.data import TrackedSequence, links_for
from embedtrack.errors import EmbedTrackError
from embedtrack.training.sparse_labels import IGNORE


@dataclass(frozen=True)
class Augment:
    """Probabilities and strengths of the training augmentations."""

    p_clahe: float = 0.2
    p_blur: float = 0.25
    max_blur_sigma: float = 2.0
    p_shift: float = 0.3
    max_shift: int = 12
    p_gamma: float = 0.3
    p_scale: float = 0.5
    scale: tuple[float, float] = (0.5, 2.5)  # zoom factor (> 1 magnifies), drawn log-uniformly
    p_elastic: float = 0.3
    elastic_px: float = 3.0  # largest displacement of the smooth deformation field
    p_contrast: float = 0.5
    p_field: float = 0.4
    field_strength: float = 0.4  # multiplicative low-frequency field in [1 - s, 1 + s]
    p_texture: float = 0.3
    texture_strength: float = 0.3
    p_noise: float = 0.4
    max_noise: float = 0.08  # std of additive Gaussian noise (normalised intensities)
    p_cell_gain: float = 0.3
    cell_gain: tuple[float, float] = (0.25, 1.5)  # per-track multiplicative gain
    p_dim_body: float = 0.2
    dim_gamma: tuple[float, float] = (1.8, 3.2)
    p_snr: float = 0.4
    snr: tuple[float, float] = (1.0, 8.0)  # target body SNR of the camera-noise augmentation, log-uniform

    @classmethod
    def off(cls, **kwargs: float) -> Augment:
        """Every augmentation off except those given (e.g. ``Augment.off(p_shift=0.5)``)."""
        zero = {f.name: 0.0 for f in fields(cls) if f.name.startswith("p_")}
        return cls(**{**zero, **kwargs})


@dataclass(frozen=True)
class CropRef:
    seq: int
    t: int  # frame position of t (t-1 = t - 1)
    y: int
    x: int


def _pad_to(array: np.ndarray, size: int) -> np.ndarray:
    """Pad bottom/right with zeros: the padding of images and labels agrees (no cell, background label).

    Reflecting the image here would show mirrored cells that the zero-padded labels call background.
    """
    pad_y, pad_x = max(0, size - array.shape[0]), max(0, size - array.shape[1])
    if pad_y == 0 and pad_x == 0:
        return array
    return np.pad(array, ((0, pad_y), (0, pad_x)), mode="constant")


def grid_positions(length: int, crop: int) -> list[int]:
    """Start positions of overlapping crops (stride crop/2) that cover [0, length)."""
    if length <= crop:
        return [0]
    stride = crop // 2
    starts = list(range(0, length - crop, stride))
    return starts + [length - crop]


class CropPairs(Dataset):
    """Crop pairs of the frames ``[first, last)`` of each sequence (t ranges over first+1..last-1).

    ``count=None``: every overlapping grid crop (stride half a crop) whose t crop holds a cell.
    ``count=N``: N random crop positions per epoch (redrawn by :meth:`resample`), each holding a cell.
    """

    def __init__(
        self,
        sequences: list[TrackedSequence],
        crop: int,
        split: str = "train",
        count: int | None = None,
        augment: Augment | None = None,
        seed: int = 0,
    ) -> None:
        self.sequences = sequences
        self.crop = crop
        self.augment = augment
        self.rng = np.random.default_rng(seed)
        self.pairs = [(i, t) for i, s in enumerate(sequences) for t in s.pair_times(split)]
        if not self.pairs:
            raise EmbedTrackError(f"no frame pairs (t, t-1) in the {split} split: every sequence needs at least "
                                  "3 frames (a block at the end validates)")
        self.count = count
        self.split = split
        self.refs: list[CropRef] = []
        self.resample()

    def resample(self) -> None:
        """Draw the crops of the next epoch (random mode) or list the grid (grid mode)."""
        if self.count is None:
            self.refs = [ref for ref in self._grid() if self._has_cells(ref)]
        else:
            self.refs = [self._random_ref() for _ in range(self.count)]
            self.refs = [ref for ref in self.refs if self._has_cells(ref)]
        if not self.refs:
            raise EmbedTrackError(f"no {self.crop}x{self.crop} crop of the {self.split} frames holds a labelled cell")
        self.augment_seed = int(self.rng.integers(2**31))  # with the crop index, seeds its augmentation

    def _grid(self) -> list[CropRef]:
        refs = []
        for i, t in self.pairs:
            h, w = self.sequences[i].labels[t].shape
            refs += [CropRef(i, t, y, x) for y in grid_positions(h, self.crop) for x in grid_positions(w, self.crop)]
        return refs

    def _random_ref(self) -> CropRef:
        """A uniformly drawn crop holding a cell; after 20 misses (sparse cells), one around a random cell pixel."""
        for _ in range(20):
            i, t = self.pairs[self.rng.integers(len(self.pairs))]
            h, w = self.sequences[i].labels[t].shape
            ref = CropRef(i, t, int(self.rng.integers(max(1, h - self.crop + 1))),
                          int(self.rng.integers(max(1, w - self.crop + 1))))
            if self._has_cells(ref):
                return ref
        with_cells = [(i, t) for i, t in self.pairs if _cells(self.sequences[i].labels[t]).any()]
        if not with_cells:
            return CropRef(*self.pairs[0], 0, 0)  # resample() reports the missing cells
        i, t = with_cells[self.rng.integers(len(with_cells))]
        lab = self.sequences[i].labels[t]
        ys, xs = np.nonzero(_cells(lab))
        k = self.rng.integers(len(ys))
        y = int(np.clip(ys[k] - self.rng.integers(self.crop), 0, max(0, lab.shape[0] - self.crop)))
        x = int(np.clip(xs[k] - self.rng.integers(self.crop), 0, max(0, lab.shape[1] - self.crop)))
        return CropRef(i, t, y, x)

    def _has_cells(self, ref: CropRef) -> bool:
        lab = self.sequences[ref.seq].labels[ref.t]
        return bool(_cells(lab[ref.y: ref.y + self.crop, ref.x: ref.x + self.crop]).any())

    def __len__(self) -> int:
        return len(self.refs)

    def _cut(self, array: np.ndarray, y: int, x: int) -> np.ndarray:
        return _pad_to(array[y: y + self.crop, x: x + self.crop], self.crop)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ref = self.refs[index]
        seq = self.sequences[ref.seq]
        yp, xp = ref.y, ref.x
        aug = self.augment
        rng = np.random.default_rng([self.augment_seed, index])  # a crop's augmentation depends on it alone
        if aug is not None and rng.random() < aug.p_shift:
            h, w = seq.labels[ref.t].shape
            yp = int(np.clip(ref.y + rng.integers(-aug.max_shift, aug.max_shift + 1), 0, max(0, h - self.crop)))
            xp = int(np.clip(ref.x + rng.integers(-aug.max_shift, aug.max_shift + 1), 0, max(0, w - self.crop)))
        warp = self._warp(aug, rng) if aug is not None else None
        img_t, lab_t = self._window(seq, ref.t, ref.y, ref.x, warp)
        img_p, lab_p = self._window(seq, ref.t - 1, yp, xp, warp)
        if warp is not None and not _cells(lab_t).any():  # the warp lost every cell of the crop: take it plain
            img_t, lab_t = self._window(seq, ref.t, ref.y, ref.x, None)
            img_p, lab_p = self._window(seq, ref.t - 1, yp, xp, None)
        if aug is not None:
            img_t, img_p = _cell_gain(img_t, img_p, lab_t, lab_p, aug, rng)
            img_t, img_p = self._intensity(img_t, img_p, aug, rng)
            if rng.random() < aug.p_snr:
                img_t, img_p = camera_noise(img_t, img_p, lab_t, float(np.exp(rng.uniform(*np.log(aug.snr)))), rng)
            k, flip = int(rng.integers(4)), bool(rng.integers(2))
            img_t, img_p, lab_t, lab_p = (_geometric(a, k, flip) for a in (img_t, img_p, lab_t, lab_p))
        links = links_for(lab_t, lab_p, seq.parents)
        return {
            "image_t": torch.from_numpy(np.ascontiguousarray(img_t))[None],
            "image_prev": torch.from_numpy(np.ascontiguousarray(img_p))[None],
            "labels_t": torch.from_numpy(lab_t.astype(np.int64)),
            "labels_prev": torch.from_numpy(lab_p.astype(np.int64)),
            "links": torch.from_numpy(links),
        }

    def _warp(self, aug: Augment, rng: np.random.Generator) -> np.ndarray | None:
        """Sampling offsets (2, crop, crop) relative to the crop origin for scale + elastic, or None (identity).

        The same map serves t and t-1 (each at its own origin), so both frames see the same geometry.
        """
        scale = float(np.exp(rng.uniform(*np.log(aug.scale)))) if rng.random() < aug.p_scale else 1.0
        elastic = rng.random() < aug.p_elastic
        if scale == 1.0 and not elastic:
            return None
        centre = (self.crop - 1) / 2.0
        grid = np.mgrid[: self.crop, : self.crop].astype(np.float32)
        coords = centre + (grid - centre) / np.float32(scale)
        if elastic:
            coarse = rng.normal(0.0, 1.0, (2, 5, 5)).astype(np.float32)
            field = np.stack([ndimage.zoom(c, self.crop / 5.0, order=3)[: self.crop, : self.crop] for c in coarse])
            field *= np.float32(aug.elastic_px / (np.abs(field).max() + 1e-6))
            coords = coords + field
        return coords

    def _window(self, seq: TrackedSequence, t: int, y: int, x: int,
                warp: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Image (float32) and labels of frame ``t`` in the crop at (y, x), optionally resampled by ``warp``."""
        if warp is None:
            return (self._cut(seq.frames[t], y, x).astype(np.float32), self._cut(seq.labels[t], y, x))
        coords = warp + np.array([y, x], np.float32)[:, None, None]
        image = ndimage.map_coordinates(seq.frames[t].astype(np.float32), coords, order=1, mode="constant")
        labels = ndimage.map_coordinates(seq.labels[t], coords, order=0, mode="constant")
        return image.astype(np.float32), labels

    def _intensity(self, a: np.ndarray, b: np.ndarray, aug: Augment,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if rng.random() < aug.p_clahe:
            clip = float(rng.uniform(0.005, 0.03))
            a, b = (exposure.equalize_adapthist(np.clip(x, 0, 1), clip_limit=clip).astype(np.float32) for x in (a, b))
        if rng.random() < aug.p_dim_body:
            gamma = float(rng.uniform(*aug.dim_gamma))
            a, b = (np.clip(x, 0.0, None) ** gamma for x in (a, b))
        if rng.random() < aug.p_gamma:
            gamma = float(rng.uniform(0.7, 1.4))
            a, b = (np.sign(x) * np.abs(x) ** gamma for x in (a, b))
        if rng.random() < aug.p_contrast:
            gain, offset = float(rng.uniform(0.6, 1.5)), float(rng.uniform(-0.1, 0.1))
            a, b = (x * gain + offset for x in (a, b))
        if rng.random() < aug.p_field:
            field = 1.0 + aug.field_strength * smooth_field(a.shape, 4, rng)
            a, b = a * field, b * field
        if rng.random() < aug.p_texture:  # grain inside bright structures, different in each frame
            a, b = (x * (1.0 + aug.texture_strength * smooth_field(x.shape, max(4, x.shape[0] // 3), rng))
                    for x in (a, b))
        if rng.random() < aug.p_blur:
            sigma = float(rng.uniform(0.3, aug.max_blur_sigma))
            a, b = (ndimage.gaussian_filter(x, sigma) for x in (a, b))
        if rng.random() < aug.p_noise:
            std = float(rng.uniform(0.0, aug.max_noise))
            a, b = (x + rng.normal(0.0, std, x.shape) for x in (a, b))
        return a.astype(np.float32), b.astype(np.float32)


def camera_noise(a: np.ndarray, b: np.ndarray, lab_a: np.ndarray, snr: float,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Poisson-Gaussian noise that brings the cells' median body SNR down to ``snr``, then each frame
    normalised again by its own 1st/99th percentiles, as inference normalises a noisy frame.

    Body SNR is a cell's mean minus the background median, over the background's standard deviation
    (:mod:`ctc.conditions`), measured on the t crop. A constant (read) variance brings the background's noise to
    the target; a signal-dependent (shot) part, proportional to the intensity above the background, adds up to
    twice as much again at a median cell body. Crops whose cells already stand out less are left as they are.
    """
    cells, back = _cells(lab_a), lab_a == 0
    if not cells.any() or back.sum() < 16:
        return a, b
    bg = float(np.median(a[back]))
    contrast = float(np.median(ndimage.mean(a, lab_a * cells, np.unique(lab_a[cells])))) - bg
    noise_now = 1.4826 * float(np.median(np.abs(a[back] - bg)))
    extra_var = (contrast / snr) ** 2 - noise_now ** 2
    if contrast <= 0.0 or extra_var <= 0.0:
        return a, b
    shot = float(rng.uniform(0.0, 2.0))
    out = []
    for x in (a, b):
        above = np.clip(x - bg, 0.0, None) / contrast  # 1 at the median body
        std = np.sqrt(extra_var * (1.0 + shot * above))
        noisy = x + rng.normal(0.0, 1.0, x.shape) * std
        lo, hi = np.percentile(noisy, [1.0, 99.0])
        out.append(((noisy - lo) / max(float(hi - lo), 1e-6)).astype(np.float32))
    return out[0], out[1]


def _cell_gain(a: np.ndarray, b: np.ndarray, lab_a: np.ndarray, lab_b: np.ndarray, aug: Augment,
               rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each track's pixels (and a few around them, soft-edged) times one gain drawn per track."""
    if not rng.random() < aug.p_cell_gain:
        return a, b
    ids = np.union1d(lab_a[_cells(lab_a)], lab_b[_cells(lab_b)])
    if len(ids) == 0:
        return a, b
    table = dict(zip(ids.tolist(), rng.uniform(*aug.cell_gain, len(ids)).tolist()))
    return tuple(x * _gain_map(lab, table) for x, lab in ((a, lab_a), (b, lab_b)))  # type: ignore[return-value]


def _gain_map(labels: np.ndarray, table: dict[int, float]) -> np.ndarray:
    cells = np.where(_cells(labels), labels, 0).astype(np.int64)
    grown = expand_labels(cells, 4)
    lut = np.ones(int(grown.max(initial=0)) + 1, dtype=np.float32)
    for label, gain in table.items():
        if label < len(lut):
            lut[label] = gain
    return ndimage.gaussian_filter(lut[grown], 2.0).astype(np.float32)


def _cells(labels: np.ndarray) -> np.ndarray:
    """Pixels of labelled cells (not background, not unknown)."""
    return (labels > 0) & (labels != IGNORE)


def _geometric(array: np.ndarray, k: int, flip: bool) -> np.ndarray:
    out = np.rot90(array, k)
    return out[:, ::-1] if flip else out


def collate(samples: list[dict[str, torch.Tensor]]) -> dict[str, object]:
    """Stack a batch; ``links`` stay a list (one [K, 2] tensor per sample)."""
    batch: dict[str, object] = {k: torch.stack([s[k] for s in samples]) for k in samples[0] if k != "links"}
    batch["links"] = [s["links"] for s in samples]
    return batch
