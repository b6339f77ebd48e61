"""Loss tests on hand-made inputs (paper §3.2)."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from embedtrack.training.losses import (
    Instances,
    LossWeights,
    embedtrack_loss,
    lovasz_hinge,
    medoid,
    position_grid,
    segmentation_loss,
    tracking_loss,
)

SCALE = 32.0


def brute_force_lovasz_hinge(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Lovász extension of the Jaccard loss at the hinge errors, from its definition as a maximum over
    permutation orders: f(m) = sum_i m_(i) * (J(S_i) - J(S_{i-1})) with elements sorted by decreasing error."""
    errors = torch.relu(1.0 - logits * (2 * labels - 1)).tolist()
    gt = labels.tolist()
    n = len(gt)

    def jaccard_loss(mistakes: set[int]) -> float:
        positives = {i for i in range(n) if gt[i] == 1}
        false_neg = {i for i in mistakes if gt[i] == 1}
        false_pos = {i for i in mistakes if gt[i] == 0}
        union = len(positives | false_pos)
        if union == 0:
            return 0.0
        return 1.0 - len(positives - false_neg) / union

    # The Lovász extension equals the max over all orderings of the greedy sum (submodular set function);
    # for the sorted order it is attained, so we check against the maximum over all permutations.
    best = -math.inf
    for order in itertools.permutations(range(n)):
        total, chosen, prev = 0.0, set(), 0.0
        for i in order:
            chosen.add(i)
            value = jaccard_loss(chosen)
            total += errors[i] * (value - prev)
            prev = value
        best = max(best, total)
    return best


@pytest.mark.parametrize("seed", range(6))
def test_lovasz_hinge_matches_brute_force(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    n = 5
    logits = torch.rand(n, generator=gen) * 4 - 2
    labels = (torch.rand(n, generator=gen) > 0.5).float()
    labels[0] = 1.0
    assert float(lovasz_hinge(logits, labels)) == pytest.approx(brute_force_lovasz_hinge(logits, labels), abs=1e-5)


def test_lovasz_hinge_zero_for_confident_correct_predictions() -> None:
    labels = torch.tensor([1.0, 0.0, 1.0, 0.0])
    logits = torch.tensor([1.0, -1.0, 1.0, -1.0])
    assert float(lovasz_hinge(logits, labels)) == pytest.approx(0.0)
    assert float(lovasz_hinge(-logits, labels)) > 1.0


def test_medoid_lies_on_an_instance_pixel() -> None:
    pts = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 2.0], [5.0, 5.0]])
    assert medoid(pts).tolist() == [0.0, 1.0]


def _two_cells(h: int = 24, w: int = 24) -> torch.Tensor:
    labels = torch.zeros(h, w, dtype=torch.long)
    labels[3:10, 4:12] = 1
    labels[13:20, 10:18] = 2
    return labels


def _perfect_seg(labels: torch.Tensor, positions: torch.Tensor, centres: torch.Tensor, ids: torch.Tensor,
                 bandwidth: float = 0.9) -> torch.Tensor:
    """Offsets that move every pixel exactly onto its cell's centre; seediness 1 inside, 0 outside."""
    h, w = labels.shape
    seg = torch.zeros(5, h, w)
    for cid, centre in zip(ids.tolist(), centres):
        inside = labels == cid
        seg[0][inside] = centre[0] - positions[0][inside]
        seg[1][inside] = centre[1] - positions[1][inside]
        seg[4][inside] = 1.0
    seg[2:4] = bandwidth
    return seg


def test_perfect_embedding_gives_near_zero_instance_and_tracking_loss() -> None:
    labels = _two_cells()
    pos = position_grid(*labels.shape, SCALE)
    inst = Instances.from_labels(labels, pos)
    seg = _perfect_seg(labels, pos, inst.centres, inst.ids)
    w = LossWeights()
    total, parts, bw_mean = segmentation_loss(seg, inst, pos, w)
    assert float(parts["instance"]) < 0.02
    assert float(parts["var"]) == pytest.approx(0.0, abs=1e-6)
    assert float(parts["seed"]) < 1e-4
    # Tracking: the cells moved by (+2, +1) pixels from t-1 to t; offsets at t point to the t-1 medoids.
    labels_prev = torch.roll(labels, shifts=(-2, -1), dims=(0, 1))
    inst_prev = Instances.from_labels(labels_prev, pos)
    track = _perfect_seg(labels, pos, inst_prev.centres, inst.ids)[:2]
    links = torch.tensor([[1, 1], [2, 2]])
    assert float(tracking_loss(track, inst, inst_prev, bw_mean, links, pos, w)) < 0.02
    wrong = _perfect_seg(labels, pos, inst_prev.centres.flip(0), inst.ids)[:2]  # each cell to the other's centre
    assert float(tracking_loss(wrong, inst, inst_prev, bw_mean, links, pos, w)) > 0.5


def test_constant_bandwidth_has_zero_variance_and_varying_has_positive() -> None:
    labels = _two_cells()
    pos = position_grid(*labels.shape, SCALE)
    inst = Instances.from_labels(labels, pos)
    seg = torch.rand(5, *labels.shape)
    seg[2:4] = 0.3
    _, parts, _ = segmentation_loss(seg, inst, pos, LossWeights())
    assert float(parts["var"]) == pytest.approx(0.0, abs=1e-6)
    seg[2, 3:10, 4:8] = 0.9
    _, parts, _ = segmentation_loss(seg, inst, pos, LossWeights())
    assert float(parts["var"]) > 0.01


def test_empty_labels_only_penalise_seediness() -> None:
    labels = torch.zeros(16, 16, dtype=torch.long)
    pos = position_grid(16, 16, SCALE)
    seg = torch.zeros(5, 16, 16)
    seg[4] = 0.5
    total, parts, _ = segmentation_loss(seg, Instances.from_labels(labels, pos), pos, LossWeights())
    assert float(total) == pytest.approx(0.25)


def test_gradients_reach_all_three_decoders() -> None:
    from embedtrack.models.architecture import ArchConfig, EmbedTrackNet

    net = EmbedTrackNet(ArchConfig(widths=(4, 8, 16), encoder_blocks=1, dilation_rounds=1))
    labels = _two_cells(32, 32)[None]
    img = labels.float()[:, None] + 0.1 * torch.rand(1, 1, 32, 32)
    seg_t, seg_p, track = net(img, img)
    loss, _ = embedtrack_loss(seg_t, seg_p, track, labels, labels, [torch.tensor([[1, 1], [2, 2]])], SCALE)
    loss.backward()
    for part in (net.encoder, net.seg_decoder, net.seed_decoder, net.track_decoder):
        grads = [p.grad for p in part.parameters() if p.grad is not None]
        assert grads and sum(float(g.abs().sum()) for g in grads) > 0, part


def test_partial_sort_stays_within_tolerance_of_exact() -> None:
    gen = torch.Generator().manual_seed(3)
    dist = torch.rand(4, 2000, generator=gen) ** 8  # mostly tiny kernel values, like far-away pixels
    labels = (torch.rand(4, 2000, generator=gen) > 0.97).float()
    exact = lovasz_hinge(2 * dist - 1, labels)
    fast = lovasz_hinge(2 * dist - 1, labels, tol=1e-3)
    assert torch.allclose(exact, fast, atol=1e-3 * 2000 / 100)
    assert float((exact - fast).abs().max()) < 0.05
