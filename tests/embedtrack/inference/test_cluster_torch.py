"""The clustering's per-pixel stage on torch tensors gives exactly the NumPy stage's result (paper §3.3), and
linking takes tensor tracking offsets (§3.4). CUDA cases run only where a GPU is present."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
import torch
from scipy import ndimage as ndi

from embedtrack.inference import cluster_dense, cluster_torch
from embedtrack.inference.cluster import cluster
from embedtrack.errors import EmbedTrackError
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.inference.link import candidates, link
from embedtrack.models.predictions import Predictions, values_at
from tests.embedtrack.inference.test_cluster import _reassignment_case, perfect, spread_cell, voronoi
from tests.embedtrack.inference.test_link import box, offsets_to

Maps = tuple[np.ndarray, np.ndarray, np.ndarray]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def tensors(maps: Maps, device: str = "cpu") -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(np.ascontiguousarray(m)).to(device) for m in maps)


def same_labels(maps: Maps, params: InferenceConfig, device: str = "cpu") -> np.ndarray:
    """:func:`cluster` on the arrays and on the same maps as tensors: equal label images (returned)."""
    expected = cluster(Predictions(*maps), params)
    got = cluster(Predictions(*tensors(maps, device)), params)
    assert got.dtype == expected.dtype == np.int32
    assert np.array_equal(got, expected)
    return expected


def same_dense(maps: Maps, params: InferenceConfig, device: str = "cpu") -> cluster_dense.Dense:
    """Both per-pixel stages hand the loop the same record, bit for bit (returned)."""
    expected = cluster_dense.dense_stage(*maps, params)
    got = cluster_torch.dense_stage(*tensors(maps, device), params)
    assert expected is not None and got is not None
    for f in fields(cluster_dense.Dense):
        a, b = getattr(expected, f.name), getattr(got, f.name)
        assert np.asarray(a).dtype == np.asarray(b).dtype, f.name
        assert np.array_equal(a, b), f.name
    return expected


def noisy(seed: int, shape: tuple[int, int], cells: int, radius: float, noise: float, shift: float = 0.0) -> Maps:
    """float32 predictions on touching cells with noisy offsets and bandwidths and random seediness: many
    candidate centres, kernels of different widths, ties and near-ties of the smoothed seediness."""
    rng = np.random.default_rng(seed)
    offsets, bandwidths, _ = perfect(voronoi(shape, cells, rng), 256.0, radius_px=radius)
    offsets = offsets + (rng.normal(0, noise, offsets.shape) + shift) / 256.0
    bandwidths = bandwidths + rng.normal(0, 0.02, bandwidths.shape)
    seediness = rng.uniform(0.3, 1.0, shape)
    seediness[rng.uniform(size=shape) < 0.2] = 0.75  # exact ties: visited in row-major order
    return offsets.astype(np.float32), bandwidths.astype(np.float32), seediness.astype(np.float32)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(96, 128), (128, 80)])
def test_perfect_predictions_same_instances(device: str, shape: tuple[int, int]) -> None:
    gt = voronoi(shape, 12, np.random.default_rng(5))
    sizes = np.bincount(gt.ravel())[1:]
    out = same_labels(perfect(gt, 256.0), InferenceConfig(min_size=int(sizes.min())), device)
    assert out.max() == 12


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(("seed", "shape", "radius", "noise", "shift"),
                         [(0, (80, 100), 3.0, 1.0, 0.0), (1, (64, 150), 8.0, 3.0, 20.0),
                          (2, (150, 70), 12.0, 2.0, -20.0)])
@pytest.mark.parametrize(("seed_window", "refine_steps", "merge_reach", "min_size"),
                         [(1, 0, 0.0, 15), (1, 2, 0.0, 0), (3, 2, 0.0, 15), (3, 0, 1.5, 15), (4, 2, 2.0, 5)])
def test_noisy_predictions_same_record_and_labels(device: str, seed: int, shape: tuple[int, int], radius: float,
                                                 noise: float, shift: float, seed_window: int, refine_steps: int,
                                                 merge_reach: float, min_size: int) -> None:
    maps = noisy(seed, shape, 10, radius, noise, shift)
    params = InferenceConfig(min_size=min_size, min_votes=2, seed_window=seed_window, refine_steps=refine_steps,
                             merge_reach=merge_reach)
    dense = same_dense(maps, params, device)
    assert dense.seeds.size > 100
    assert same_labels(maps, params, device).max() >= 2


@pytest.mark.parametrize("refine_steps", [0, 2])
def test_hand_made_cases_same_labels(refine_steps: int) -> None:
    offsets, bandwidths, seediness, _ = _reassignment_case(n_a=15, n_moved=10, n_new=20)
    same_labels((offsets, bandwidths, seediness), InferenceConfig(min_size=20, refine_steps=refine_steps))
    offsets, bandwidths, seediness, _ = spread_cell(3.0, 3.0, 2.0)
    for reach in (0.0, 2.0):
        params = InferenceConfig(min_size=50, refine_steps=refine_steps, merge_reach=reach)
        assert same_labels((offsets, bandwidths, seediness), params).max() == (2 if reach == 0 else 1)


def test_float64_maps_same_labels() -> None:
    rng = np.random.default_rng(7)
    offsets, bandwidths, _ = perfect(voronoi((60, 90), 8, rng), 256.0, radius_px=5.0)
    seediness = rng.uniform(0.4, 1.0, (60, 90))  # float64, as given
    same_labels((offsets + rng.normal(0, 1.0, offsets.shape) / 256.0, bandwidths, seediness),
                InferenceConfig(min_size=10, seed_window=3))


def test_half_precision_tensors_match_their_float32_copy() -> None:
    maps = noisy(3, (64, 96), 8, 5.0, 1.0)
    params = InferenceConfig(min_size=10, seed_window=3)
    for dtype in (torch.float16, torch.bfloat16):
        pred = Predictions(*(t.to(dtype) for t in tensors(maps)))
        assert np.array_equal(cluster(pred, params), cluster(pred.to_numpy(), params))


def test_no_foreground_or_no_candidate_gives_empty_labels() -> None:
    offsets, bandwidths, seediness = perfect(box(np.zeros((30, 50), np.int32), 1, 5, 15, 5, 15), 256.0)
    assert not same_labels((offsets, bandwidths, np.zeros_like(seediness)), InferenceConfig()).any()
    offsets[0] -= 40 / 256.0  # every vote falls above the image: no candidate
    out = same_labels((offsets, bandwidths, seediness), InferenceConfig(min_size=1))
    assert out.shape == (30, 50) and not out.any()


def test_tensors_requiring_grad_and_mixed_inputs() -> None:
    maps = noisy(4, (48, 64), 5, 4.0, 1.0)
    expected = cluster(Predictions(*maps), InferenceConfig(min_size=5))
    grad = [t.requires_grad_() for t in tensors(maps)]
    assert np.array_equal(cluster(Predictions(*grad), InferenceConfig(min_size=5)), expected)
    mixed = Predictions(maps[0], maps[1], torch.from_numpy(maps[2]))
    assert np.array_equal(cluster(mixed, InferenceConfig(min_size=5)), expected)


def test_tensors_take_the_torch_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def spy(name: str, stage: object) -> object:
        def wrapped(*args: object) -> object:
            calls.append(name)
            return stage(*args)  # type: ignore[operator]
        return wrapped

    monkeypatch.setattr(cluster_torch, "dense_stage", spy("torch", cluster_torch.dense_stage))
    monkeypatch.setattr("embedtrack.inference.cluster.dense_stage", spy("numpy", cluster_dense.dense_stage))
    maps = noisy(8, (32, 40), 4, 4.0, 1.0)
    same_labels(maps, InferenceConfig(min_size=5))
    assert calls == ["numpy", "torch"]


def error_message(pred: Predictions, params: InferenceConfig | None = None) -> str:
    with pytest.raises(EmbedTrackError) as info:
        cluster(pred, params)
    return str(info.value)


def small_maps(offset: float = 0.0, bandwidth: float = 0.0, offsets_width: int = 8) -> Maps:
    """8 x 8 maps, every pixel foreground, constant offsets and bandwidths."""
    return (np.full((2, 8, offsets_width), offset, np.float32), np.full((2, 8, 8), bandwidth, np.float32),
            np.ones((8, 8), np.float32))


def test_errors_name_the_same_problem() -> None:
    for maps, word in ((small_maps(offset=np.nan), "offsets contain NaN"),
                       (small_maps(bandwidth=np.nan), "bandwidths contain NaN"),
                       (small_maps(offsets_width=9), "(2, 8, 9)")):
        message = error_message(Predictions(*maps), InferenceConfig(min_votes=0))
        assert word in message
        assert error_message(Predictions(*tensors(maps)), InferenceConfig(min_votes=0)) == message


@pytest.mark.parametrize("k", [2, 3, 4, 5])
def test_seed_window_is_the_uniform_filter_mean(k: int) -> None:
    # The term-by-term float64 sum rounds once: within a float32 ulp of scipy's running mean, same alignment.
    x = np.random.default_rng(k).uniform(0, 1, (37, 53)).astype(np.float32)
    mean = cluster_dense.window_mean(x, k)
    np.testing.assert_allclose(mean, ndi.uniform_filter(x, k, mode="nearest"), rtol=2e-7, atol=0)
    assert np.array_equal(cluster_torch.window_mean(torch.from_numpy(x), k).numpy(), mean)


def test_to_numpy_and_values_at() -> None:
    maps = noisy(6, (20, 30), 3, 4.0, 1.0)
    pred = Predictions(*tensors(maps), track_offsets=torch.from_numpy(maps[0]))
    host = pred.to_numpy()
    maps_back = (host.offsets, host.bandwidths, host.seediness, host.track_offsets)
    assert all(isinstance(m, np.ndarray) for m in maps_back)
    assert np.array_equal(host.offsets, maps[0]) and Predictions(*maps).to_numpy().track_offsets is None
    flat = np.array([0, 7, 599])
    assert np.array_equal(values_at(pred.offsets, flat), values_at(maps[0], flat))
    assert np.array_equal(values_at(maps[0], flat), maps[0].reshape(2, -1)[:, flat])


@pytest.mark.parametrize("device", DEVICES)
def test_link_takes_tensor_track_offsets(device: str) -> None:
    prev = box(box(box(np.zeros((40, 70), np.int32), 1, 5, 15, 5, 15), 2, 20, 30, 30, 40), 3, 5, 12, 50, 60)
    cur = box(box(box(box(np.zeros((40, 70), np.int32), 4, 8, 18, 8, 18), 5, 22, 28, 28, 33), 6, 22, 28, 35, 41),
              7, 2, 9, 52, 62)
    off = offsets_to(cur, {4: (10, 10), 5: (25, 33), 6: (25, 37), 7: (8, 55)})
    off += np.random.default_rng(0).normal(0, 1.5, off.shape) / 256.0
    config = InferenceConfig(coord_scale=256.0)
    tensor = torch.from_numpy(off.astype(np.float32)).to(device)
    expected = link(cur, off.astype(np.float32), prev, config)
    assert expected == {4: 1, 5: 2, 6: 2, 7: 3}
    assert link(cur, tensor, prev, config) == expected
    assert candidates(cur, tensor, prev, config) == candidates(cur, off.astype(np.float32), prev, config)
    with pytest.raises(EmbedTrackError, match=r"got \(2, 40, 71\)"):
        link(cur, torch.zeros(2, 40, 71), prev, config)
    with pytest.raises(EmbedTrackError, match="NaN"):
        link(cur, torch.full((2, 40, 70), float("nan")), prev, config)
