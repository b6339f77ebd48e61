"""Tests of embedtrack.models.architecture: output shapes and ranges of the branched ERFNet, architecture config."""

from __future__ import annotations

import copy

import pytest
import torch

from embedtrack.errors import ConfigError
from embedtrack.models.architecture import SEG_CHANNELS, TRACK_CHANNELS, ArchConfig, EmbedTrackNet, fold_batch_norm

ARCH = ArchConfig(widths=(4, 8, 16), encoder_blocks=1, dilation_rounds=1)


@pytest.fixture(scope="module")
def net() -> EmbedTrackNet:
    torch.manual_seed(0)
    model = EmbedTrackNet(ARCH)
    with torch.no_grad():  # large head weights so that tanh/sigmoid saturate somewhere
        for dec in (model.seg_decoder, model.seed_decoder, model.track_decoder):
            dec.layers[-1].weight.mul_(1e4)
    return model.eval()


def _frames(batch: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return torch.rand(batch, 1, 64, 96, generator=gen) * 3, torch.rand(batch, 1, 64, 96, generator=gen) * 3


def test_parts_shapes_and_ranges(net: EmbedTrackNet) -> None:
    frame_t, frame_p = _frames()
    with torch.no_grad():
        f_t, f_p = net.encode(frame_t), net.encode(frame_p)
        seg = net.decode_seg(f_t)
        track = net.decode_track(f_t, f_p)
    assert f_t.shape == (2, 16, 8, 12)
    assert seg.shape == (2, SEG_CHANNELS, 64, 96) and track.shape == (2, TRACK_CHANNELS, 64, 96)
    offsets, bandwidths, seeds = seg[:, :2], seg[:, 2:4], seg[:, 4]
    assert offsets.min() >= -1 and offsets.max() <= 1 and offsets.min() < -0.9 and offsets.max() > 0.9
    assert track.min() >= -1 and track.max() <= 1 and track.min() < -0.9 and track.max() > 0.9
    for sig in (bandwidths, seeds):
        assert sig.min() >= 0 and sig.max() <= 1 and sig.min() < 0.1 and sig.max() > 0.9


def test_forward_encodes_each_frame_on_its_own(net: EmbedTrackNet) -> None:
    frame_t, frame_p = _frames()
    with torch.no_grad():
        seg_t, seg_p, track = net(frame_t, frame_p)
        assert seg_t.shape == seg_p.shape == (2, SEG_CHANNELS, 64, 96) and track.shape == (2, 2, 64, 96)
        f_t, f_p = net.encode(frame_t), net.encode(frame_p)
        assert torch.allclose(seg_t, net.decode_seg(f_t), atol=1e-5)
        assert torch.allclose(seg_p, net.decode_seg(f_p), atol=1e-5)
        assert torch.allclose(track, net.decode_track(f_t, f_p), atol=1e-5)
        seg_t_other, _, track_other = net(frame_t, torch.zeros_like(frame_p))
    assert torch.allclose(seg_t, seg_t_other, atol=1e-5)  # t's segmentation ignores the other frame
    assert not torch.allclose(track, track_other, atol=1e-3)  # the tracking offsets do not


def test_initial_outputs_are_a_stable_start() -> None:
    torch.manual_seed(0)
    model = EmbedTrackNet(ARCH).eval()
    with torch.no_grad():
        seg = model.decode_seg(model.encode(torch.rand(1, 1, 32, 32)))
    assert seg[:, :2].abs().max() < 0.5 and seg[:, 4].max() < 0.5


def test_arch_config_round_trip_and_unknown_keys() -> None:
    data = ARCH.to_dict()
    assert data["widths"] == [4, 8, 16]
    assert ArchConfig.from_dict(data) == ARCH
    with pytest.raises(ConfigError, match=r"architecture: unknown keys \['depth'\]"):
        ArchConfig.from_dict({**data, "depth": 3})
    with pytest.raises(ConfigError, match=r"architecture: widths must be a list, got \[4, 8\]"):
        ArchConfig.from_dict({**data, "widths": [4, 8]})
    assert ArchConfig.from_dict({}) == ArchConfig()
    assert ArchConfig().widths == (16, 64, 128)


def _trained_looking(seed: int = 0) -> EmbedTrackNet:
    """A small net whose batch norms hold non-trivial statistics and affine parameters (as after training)."""
    torch.manual_seed(seed)
    net = EmbedTrackNet(ArchConfig(widths=(4, 8, 16), encoder_blocks=1, dilation_rounds=1))
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.2, 3.0)
                module.weight.uniform_(-1.5, 1.5)  # negative scales too
                module.bias.uniform_(-0.5, 0.5)
    return net.eval()


def test_folded_batch_norm_computes_the_same_function() -> None:
    net = _trained_looking()
    folded = fold_batch_norm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # the original is untouched
    t, prev = _frames()
    with torch.no_grad():
        f_t, f_p = net.encode(t), net.encode(prev)
        g_t, g_p = folded.encode(t), folded.encode(prev)
        assert torch.allclose(f_t, g_t, atol=1e-5)
        assert torch.allclose(net.decode_seg(f_t), folded.decode_seg(g_t), atol=1e-5)
        assert torch.allclose(net.decode_track(f_t, f_p), folded.decode_track(g_t, g_p), atol=1e-5)


def test_in_place_activations_keep_the_gradients() -> None:
    """The in-place ReLUs must not disturb training: gradients equal those of an out-of-place copy."""
    net = _trained_looking(1).train()
    reference = copy.deepcopy(net)
    t, prev = _frames()
    grads = []
    for model, relu in ((net, None), (reference, torch.nn.functional.relu)):
        torch.manual_seed(5)  # the same dropout masks
        if relu is not None:
            original = torch.nn.functional.relu
            torch.nn.functional.relu = lambda x, inplace=False: original(x)  # type: ignore[assignment]
        try:
            seg_t, seg_p, track = model(t, prev)
            (seg_t.square().mean() + seg_p.mean() + track.abs().mean()).backward()
        finally:
            if relu is not None:
                torch.nn.functional.relu = original
        grads.append([p.grad.clone() for p in model.parameters()])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads))
