"""Network prediction on whole frames: tiling, test-time augmentation, stitching, per-frame feature reuse.

A :class:`Predictor` takes normalised frames of one sequence in order. For each frame it runs the encoder and
the segmentation decoders once, keeps the encoder features, and runs the tracking decoder on the features of
this frame and the previous one: every frame is encoded once, not twice (once per pair it belongs to).

* Whole-frame prediction when the frame has at most ``max_pixels`` pixels, otherwise overlapping tiles
  (``tile_size``, at least 25 % overlap) blended with a smooth window, so tile borders leave no seams.
* The network runs with its batch norms folded into the convolutions
(:func:`~embedtrack.models.architecture.fold_batch_norm`).
* Precision (``precision``): ``fp32``; ``bf16`` autocast with the network and its inputs in channels-last
  memory order (fast on CPUs with bf16 in hardware); ``fp16`` autocast (CUDA); ``auto`` picks one with
  :func:`embedtrack.models.device.resolve_precision`. The maps handed on are always float32.
* ``compile``: the encoder and both decoders go through ``torch.compile`` (the first frame of each input shape
  pays the compilation; see docs/speed.md for when that pays off).
* Test-time augmentation: the 8 rotations/flips of the dihedral group. Outputs are mapped back before
  averaging: maps are rotated/flipped back, offset vectors are rotated/flipped with them (y and x swap on
  90°/270°, signs follow the flip) and the bandwidth pair swaps its axes on 90°/270°.

Returns :class:`~embedtrack.models.predictions.Predictions` (named offsets, bandwidths, seediness, tracking offsets;
offsets in normalised units, pixels / ``coord_scale``): NumPy arrays on a CPU, tensors left on the GPU
otherwise, where clustering (:mod:`embedtrack.inference.cluster_torch`) and linking read them without copying the maps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from embedtrack.models.device import resolve_precision
from embedtrack.models.architecture import EmbedTrackNet, fold_batch_norm
from embedtrack.models.predictions import Predictions

TRANSFORMS: tuple[tuple[int, bool], ...] = tuple((k, flip) for flip in (False, True) for k in range(4))
IDENTITY: tuple[tuple[int, bool], ...] = ((0, False),)


def apply_transform(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """Rotate [..., H, W] by k·90° (as torch.rot90), then mirror left-right if ``flip``."""
    out = torch.rot90(x, k, dims=(-2, -1)) if k else x
    return torch.flip(out, dims=(-1,)) if flip else out


def invert_maps(x: torch.Tensor, k: int, flip: bool, vector_pairs: tuple[int, ...], axis_pairs: tuple[int, ...]
                ) -> torch.Tensor:
    """Map network outputs [B, C, H, W] computed on a transformed input back to the original frame.

    ``vector_pairs``: first channels of (y, x) displacement pairs; ``axis_pairs``: first channels of (y, x)
    per-axis magnitudes (bandwidths), which only swap under 90°/270° rotations.
    """
    if not k and not flip:
        return x
    if flip:
        x = torch.flip(x, dims=(-1,))
    if k:
        x = torch.rot90(x, -k, dims=(-2, -1))
    x = x.clone()
    for c in vector_pairs:
        dy, dx = x[:, c].clone(), x[:, c + 1].clone()
        if flip:
            dx = -dx
        for _ in range(k % 4):  # undo one 90° rotation: (a, b) -> (b, -a)
            dy, dx = dx, -dy
        x[:, c], x[:, c + 1] = dy, dx
    if k % 2:
        for c in axis_pairs:
            x[:, [c, c + 1]] = x[:, [c + 1, c]]
    return x


def tile_starts(length: int, tile: int, overlap: float) -> list[int]:
    """Start positions of tiles of ``tile`` px covering ``length`` px with at least ``overlap`` overlap."""
    if length <= tile:
        return [0]
    stride = max(8, int(tile * (1.0 - overlap)) // 8 * 8)
    n = int(np.ceil((length - tile) / stride)) + 1
    return [int(round(i * (length - tile) / (n - 1))) for i in range(n)]


def blend_window(tile: int) -> np.ndarray:
    """Smooth 2-D weight (sin² profile, never zero) that fades tile borders out."""
    ramp = np.sin(np.pi * (np.arange(tile) + 0.5) / tile) ** 2
    w = np.maximum(ramp, 1e-3).astype(np.float32)
    return np.outer(w, w)


class Predictor:
    """Stateful predictor for one sequence (call :meth:`reset` before another sequence)."""

    def __init__(self, net: EmbedTrackNet, tile_size: int, device: torch.device | str = "cpu", tta: bool = False,
                 batch_size: int = 4, overlap: float = 0.25, max_pixels: int = 1024 * 1024,
                 precision: str = "auto", batch_pixels: int | None = None, compile: bool = False) -> None:
        self.device = torch.device(device)
        self.precision = resolve_precision(precision, self.device)
        self.memory_format = torch.channels_last if self.precision == "bf16" else torch.contiguous_format
        self.net = fold_batch_norm(net).to(memory_format=self.memory_format)
        self.compiled = bool(compile)
        self.maps_on_device = self.device.type != "cpu"
        wrap = (lambda f: torch.compile(f, dynamic=False)) if compile else (lambda f: f)
        self._encode, self._decode_seg, self._decode_track = wrap(self.net.encode), wrap(self.net.decode_seg), \
            wrap(self.net.decode_track)
        self.transforms = TRANSFORMS if tta else IDENTITY
        self.tile_size = int(tile_size) // 8 * 8
        self.batch_size = max(1, batch_size)
        self.batch_pixels = batch_pixels or default_batch_pixels(self.device)
        self.overlap = max(0.25, overlap)
        self.max_pixels = max_pixels
        self._prev_features: list[torch.Tensor] | None = None
        self._prev_shape: tuple[int, int] | None = None

    def _layout(self, shape: tuple[int, int]) -> tuple[tuple[int, int], list[tuple[int, int]], int]:
        """(padded shape, tile origins, tile size) for a frame shape."""
        h, w = shape
        if h * w <= self.max_pixels:
            size = (int(np.ceil(h / 8)) * 8, int(np.ceil(w / 8)) * 8)
            return size, [(0, 0)], 0
        t = self.tile_size
        padded = (max(h, t), max(w, t))
        origins = [(y, x) for y in tile_starts(padded[0], t, self.overlap) for x in tile_starts(padded[1], t, self.overlap)]
        return padded, origins, t

    def reset(self) -> None:
        """Forget the previous frame's features (call before another sequence)."""
        self._prev_features, self._prev_shape = None, None

    def _chunks(self, inputs: list[tuple[int, int, bool]], crop_pixels: int) -> list[list[int]]:
        """Batches of input positions: at most ``batch_size`` crops and ``batch_pixels`` pixels per batch (at
        least one crop); 90°/270° rotations of non-square crops change the shape, so they are batched apart
        from 0°/180°."""
        size = max(1, min(self.batch_size, self.batch_pixels // max(crop_pixels, 1)))
        chunks: list[list[int]] = []
        for parity in (0, 1):
            group = [j for j, (_, k, _) in enumerate(inputs) if k % 2 == parity]
            chunks += [group[i: i + size] for i in range(0, len(group), size)]
        return chunks

    def _autocast(self) -> torch.autocast:
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype, enabled=self.precision != "fp32")

    @torch.no_grad()
    def __call__(self, frame: np.ndarray) -> Predictions:
        """Predict one normalised 2-D frame (float32); frames of a sequence must come in order.

        The augmentations are streamed: each batch's outputs are mapped back and added to one running sum per
        tile, so memory holds the sums and the encoder features, never all augmented outputs at once."""
        h, w = frame.shape
        padded, origins, tile = self._layout((h, w))
        image = np.pad(frame.astype(np.float32), ((0, padded[0] - h), (0, padded[1] - w)), mode="reflect")
        crops = [image] if tile == 0 else [image[y: y + tile, x: x + tile] for y, x in origins]
        batch_crops = torch.from_numpy(np.stack(crops))[:, None]
        inputs = [(i, k, flip) for i in range(len(crops)) for k, flip in self.transforms]
        prev = self._prev_features if self._prev_shape == (h, w) else None
        seg_sum = [torch.zeros(0)] * len(crops)
        track_sum: list[torch.Tensor] | None = [torch.zeros(0)] * len(crops) if prev is not None else None
        features: list[torch.Tensor] = [torch.empty(0)] * len(inputs)
        for chunk in self._chunks(inputs, int(batch_crops[0].numel())):
            x = torch.stack([apply_transform(batch_crops[inputs[j][0]], *inputs[j][1:]) for j in chunk])
            with self._autocast():
                feats = self._encode(x.to(self.device).contiguous(memory_format=self.memory_format))
                seg = self._decode_seg(feats).float()
                trk = self._decode_track(feats, torch.stack([prev[j] for j in chunk])).float() \
                    if prev is not None else None
            for n, j in enumerate(chunk):
                features[j] = feats[n]
                crop, k, flip = inputs[j]
                _accumulate(seg_sum, crop, invert_maps(seg[n: n + 1], k, flip, (0,), (2,))[0])
                if trk is not None and track_sum is not None:
                    _accumulate(track_sum, crop, invert_maps(trk[n: n + 1], k, flip, (0,), ())[0])
            del x, seg, trk
        self._prev_features, self._prev_shape = features, (h, w)

        seg_map = self._stitch(seg_sum, origins, tile, padded)[:, :h, :w]
        track_map = self._stitch(track_sum, origins, tile, padded)[:, :h, :w] if track_sum is not None else None
        return Predictions.from_maps(seg_map, track_map)

    def _stitch(self, sums: list[torch.Tensor], origins: list[tuple[int, int]], tile: int,
                padded: tuple[int, int]) -> Any:
        """Average the augmentations of each tile, then blend the tiles with the window. On a GPU the map
        stays there (clustering and linking read it on the device); otherwise it becomes a NumPy array."""
        n_aug = len(self.transforms)
        if tile == 0:
            out = sums[0] / n_aug
        else:
            out = torch.zeros((sums[0].shape[0], *padded), device=sums[0].device)
            weight = torch.zeros(padded, device=sums[0].device)
            window = torch.from_numpy(blend_window(tile)).to(sums[0].device)
            for (y, x), total in zip(origins, sums):
                out[:, y: y + tile, x: x + tile] += total / n_aug * window
                weight[y: y + tile, x: x + tile] += window
            out /= weight
        return out if self.maps_on_device else out.cpu().numpy()


def default_batch_pixels(device: torch.device) -> int:
    """Pixels per network call: one 1024² frame on a CPU (larger batches only cost memory there: 8x TTA at
    1024² took 2.3–3.0 s per frame in batches of 4 against 2.0–2.2 s one by one, bf16, 2 cores), four on CUDA."""
    return (4 if device.type == "cuda" else 1) * 1024 * 1024


def _accumulate(sums: list[torch.Tensor], i: int, out: torch.Tensor) -> None:
    """Add one augmentation's mapped-back output to the running sum of crop ``i``."""
    if sums[i].numel() == 0:
        sums[i] = out.clone()
    else:
        sums[i] += out
