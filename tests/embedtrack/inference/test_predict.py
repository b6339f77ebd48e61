"""Prediction: TTA maps outputs back exactly, tiles agree with whole frames, features are reused."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from embedtrack.models.architecture import ArchConfig, EmbedTrackNet
from embedtrack.inference.predict import TRANSFORMS, Predictor, apply_transform, invert_maps, tile_starts


def _equivariant_maps(image: torch.Tensor) -> torch.Tensor:
    """A stand-in 'network' that is exactly rotation/flip equivariant: image gradient as offsets,
    (|gy|, |gx|) as per-axis bandwidths, the image itself as seediness."""
    gy = torch.zeros_like(image)
    gx = torch.zeros_like(image)
    gy[..., 1:-1, :] = image[..., 2:, :] - image[..., :-2, :]
    gx[..., :, 1:-1] = image[..., :, 2:] - image[..., :, :-2]
    return torch.cat([gy, gx, gy.abs(), gx.abs(), image], 1)


@pytest.mark.parametrize("k,flip", TRANSFORMS)
def test_invert_maps_undoes_each_transform(k: int, flip: bool) -> None:
    image = torch.rand(1, 1, 12, 12)
    expected = _equivariant_maps(image)[..., 1:-1, 1:-1]
    out = invert_maps(_equivariant_maps(apply_transform(image, k, flip)), k, flip, (0,), (2,))[..., 1:-1, 1:-1]
    assert torch.allclose(out, expected, atol=1e-6)


def test_tile_starts_cover_with_overlap() -> None:
    for length in (100, 256, 700, 1010):
        starts = tile_starts(length, 256, 0.25)
        assert starts[0] == 0 and starts[-1] == max(0, length - 256)
        gaps = np.diff(starts)
        assert (gaps <= 192).all()  # at least 25 % of 256 overlap


def _net() -> EmbedTrackNet:
    torch.manual_seed(0)
    return EmbedTrackNet(ArchConfig(widths=(4, 8, 16), encoder_blocks=1, dilation_rounds=1)).eval()


def test_tiled_prediction_agrees_with_whole_frame() -> None:
    rng = np.random.default_rng(0)
    frames = [rng.random((96, 120)).astype(np.float32) for _ in range(2)]
    whole = Predictor(_net(), tile_size=64, max_pixels=10**7)
    tiled = Predictor(_net(), tile_size=64, max_pixels=0)
    for frame in frames:
        a, b = whole(frame), tiled(frame)
    assert a.seg_maps().shape == b.seg_maps().shape == (5, 96, 120)
    assert a.track_offsets is not None and b.track_offsets is not None
    assert np.abs(a.seg_maps() - b.seg_maps()).mean() < 0.02
    assert np.abs(a.track_offsets - b.track_offsets).mean() < 0.02


def test_first_frame_has_no_tracking_and_each_frame_is_encoded_once() -> None:
    net = _net()
    calls = {"encode": 0}
    original = net.encode

    def counting(x: torch.Tensor) -> torch.Tensor:
        calls["encode"] += x.shape[0]
        return original(x)

    net.encode = counting  # type: ignore[method-assign]
    pred = Predictor(net, tile_size=64, tta=True, batch_size=3)
    frames = [np.random.default_rng(i).random((40, 48)).astype(np.float32) for i in range(3)]
    outs = [pred(f) for f in frames]
    assert outs[0].track_offsets is None and outs[1].track_offsets is not None and outs[2].track_offsets is not None
    assert calls["encode"] == 3 * 8  # 3 frames x 8 augmentations, none encoded twice


def test_tta_average_of_equivariant_network_equals_plain_prediction() -> None:
    class Fake(torch.nn.Module):
        def encode(self, x: torch.Tensor) -> torch.Tensor:
            return x

        def decode_seg(self, f: torch.Tensor) -> torch.Tensor:
            return _equivariant_maps(f)

        def decode_track(self, f_t: torch.Tensor, f_p: torch.Tensor) -> torch.Tensor:
            return _equivariant_maps(f_t - f_p)[:, :2]

    frames = [np.random.default_rng(i).random((32, 40)).astype(np.float32) for i in range(2)]
    plain, tta = Predictor(Fake(), 32), Predictor(Fake(), 32, tta=True)  # type: ignore[arg-type]
    for frame in frames:
        a, b = plain(frame), tta(frame)
    inner = (slice(None), slice(1, -1), slice(1, -1))
    assert np.allclose(a.seg_maps()[inner], b.seg_maps()[inner], atol=1e-5)
    assert a.track_offsets is not None and b.track_offsets is not None
    assert np.allclose(a.track_offsets[inner], b.track_offsets[inner], atol=1e-5)


def test_batches_respect_the_pixel_budget() -> None:
    """8x TTA of one 64x64 crop: batches of at most ``batch_size`` crops and ``batch_pixels`` pixels, never
    empty, every augmentation once, rotations by 90°/270° apart from 0°/180°."""
    inputs = [(0, k, flip) for k, flip in TRANSFORMS]
    for batch_size, budget, largest in ((4, 64 * 64 * 8, 4), (4, 64 * 64 * 2, 2), (4, 10, 1), (3, 10**9, 3)):
        pred = Predictor(_net(), tile_size=64, tta=True, batch_size=batch_size, batch_pixels=budget)
        chunks = pred._chunks(inputs, 64 * 64)
        assert sorted(j for c in chunks for j in c) == list(range(8))
        assert max(len(c) for c in chunks) == largest and min(len(c) for c in chunks) >= 1
        assert all(len({inputs[j][1] % 2 for j in c}) == 1 for c in chunks)


def test_streamed_tta_equals_the_mean_of_the_augmentations() -> None:
    """The running sums give the mean of the 8 mapped-back outputs, whatever the batch split."""
    frames = [np.random.default_rng(i).random((40, 48)).astype(np.float32) for i in range(2)]
    one, four = (Predictor(_net(), tile_size=64, tta=True, batch_size=b, batch_pixels=10**9, precision="fp32")
                 for b in (1, 4))
    expected = []
    for frame in frames:
        a, b = one(frame), four(frame)
        assert np.allclose(a.seg_maps(), b.seg_maps(), atol=1e-5)
        expected.append(a)
    net = _net()
    x = torch.from_numpy(frames[1])[None, None]
    mean = torch.zeros(5, 40, 48)
    for k, flip in TRANSFORMS:
        with torch.no_grad():
            out = net.decode_seg(net.encode(apply_transform(x, k, flip)))
        mean += invert_maps(out, k, flip, (0,), (2,))[0] / 8
    assert np.allclose(expected[1].seg_maps(), mean.numpy(), atol=1e-5)
