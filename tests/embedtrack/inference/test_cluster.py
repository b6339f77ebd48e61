"""Tests of the pixel clustering (paper §3.3) on synthetic offset fields with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from embedtrack.inference.cluster import cluster
from embedtrack.errors import ConfigError, EmbedTrackError
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.models.predictions import Predictions

W_S = -10.0


def bandwidth_for(radius_px: float, scale: float) -> float:
    """Bandwidth (pre-exp) whose kernel equals 0.5 at ``radius_px`` pixels."""
    s = (radius_px / scale) ** 2 / math.log(2.0)
    return math.log(s) / W_S


def perfect(
    labels: np.ndarray, scale: float, radius_px: float = 4.0, seed_inside: float = 0.9
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets pointing every pixel to its object's medoid, seediness inside/0, a uniform bandwidth."""
    h, w = labels.shape
    offsets = np.zeros((2, h, w), dtype=np.float64)
    for lab in np.unique(labels[labels > 0]):
        rr, cc = np.nonzero(labels == lab)
        k = np.argmin((rr - rr.mean()) ** 2 + (cc - cc.mean()) ** 2)
        offsets[0, rr, cc] = (rr[k] - rr) / scale
        offsets[1, rr, cc] = (cc[k] - cc) / scale
    seediness = np.where(labels > 0, seed_inside, 0.0)
    bandwidths = np.full((2, h, w), bandwidth_for(radius_px, scale))
    return offsets, bandwidths, seediness


def cluster_maps(offsets: np.ndarray, bandwidths: np.ndarray, seediness: np.ndarray, scale: float,
                 config: InferenceConfig | None = None) -> np.ndarray:
    """:func:`cluster` on named maps, with the coordinate scale given separately."""
    config = (config or InferenceConfig()).replace(coord_scale=scale)
    return cluster(Predictions(offsets, bandwidths, seediness), config)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    """True when the two label images are equal up to a renumbering of the instances."""
    if not np.array_equal(a > 0, b > 0):
        return False
    pairs = np.unique(np.stack([a[a > 0], b[b > 0]]), axis=1)
    return len(set(pairs[0])) == pairs.shape[1] == len(set(pairs[1]))


def voronoi(shape: tuple[int, int], n: int, rng: np.random.Generator) -> np.ndarray:
    """Touching convex cells: the Voronoi tessellation of ``n`` random seeds, labels 1..n."""
    seeds = rng.uniform(0, shape, size=(n, 2))
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    d2 = (rr[None] - seeds[:, 0, None, None]) ** 2 + (cc[None] - seeds[:, 1, None, None]) ** 2
    return (np.argmin(d2, axis=0) + 1).astype(np.int32)


def test_two_touching_cells() -> None:
    gt = np.zeros((40, 60), dtype=np.int32)
    gt[10:30, 10:30] = 1
    gt[10:30, 30:50] = 2  # shares the column boundary with cell 1
    out = cluster_maps(*perfect(gt, 256.0), 256.0, InferenceConfig(min_size=10))
    assert out.dtype == np.int32
    assert sorted(np.unique(out)) == [0, 1, 2]
    assert same_partition(out, gt)


def test_cell_at_the_border() -> None:
    gt = np.zeros((32, 32), dtype=np.int32)
    rr, cc = np.mgrid[:32, :32]
    gt[(rr - 2) ** 2 + (cc - 30) ** 2 <= 64] = 1  # disc centred near the top-right corner, mostly cut off
    gt[20:28, 4:12] = 2
    out = cluster_maps(*perfect(gt, 256.0), 256.0, InferenceConfig(min_size=10))
    assert same_partition(out, gt)


def test_offsets_pointing_outside_the_image_do_not_vote() -> None:
    gt = np.zeros((20, 20), dtype=np.int32)
    gt[5:15, 5:15] = 1
    offsets, bandwidths, seediness = perfect(gt, 256.0)
    offsets[0][gt > 0] = -30 / 256.0  # every pixel points above the image: no votes inside it, no centre
    out = cluster_maps(offsets, bandwidths, seediness, 256.0, InferenceConfig(min_size=10))
    assert not out.any()


def test_empty_frame() -> None:
    gt = np.zeros((30, 30), dtype=np.int32)
    gt[5:20, 5:20] = 1
    offsets, bandwidths, _ = perfect(gt, 256.0)
    seediness = np.full((30, 30), 0.49)  # nothing above the 0.5 threshold
    assert not cluster_maps(offsets, bandwidths, seediness, 256.0).any()
    assert cluster_maps(offsets, bandwidths, np.zeros((30, 30)), 256.0).shape == (30, 30)


def test_small_spurious_instance_removed_and_labels_dense() -> None:
    gt = np.zeros((40, 40), dtype=np.int32)
    gt[2:5, 2:5] = 1  # 9 px: below the minimum size
    gt[10:30, 10:30] = 2
    out = cluster_maps(*perfect(gt, 256.0), 256.0, InferenceConfig(min_size=20))
    assert sorted(np.unique(out)) == [0, 1]
    assert not out[gt == 1].any()
    assert np.array_equal(out > 0, gt == 2)
    # With a small enough minimum size the spurious cell is kept.
    out = cluster_maps(*perfect(gt, 256.0), 256.0, InferenceConfig(min_size=5))
    assert same_partition(out, gt)


def test_same_answer_for_scale_256_and_512() -> None:
    gt = voronoi((64, 64), 6, np.random.default_rng(3))
    rng = np.random.default_rng(4)
    noise = rng.normal(0, 0.7, size=(2, 64, 64))  # in pixels; makes the answer depend on exact distances
    results = []
    for scale in (256.0, 512.0):
        offsets, bandwidths, seediness = perfect(gt, scale, radius_px=3.0)
        offsets = offsets + noise / scale
        results.append(cluster_maps(offsets, bandwidths, seediness, scale, InferenceConfig(min_size=10)))
    assert results[0].any()
    assert np.array_equal(results[0], results[1])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_touching_cells_recovered(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gt = voronoi((96, 128), 12, rng)
    sizes = np.bincount(gt.ravel())[1:]
    out = cluster_maps(*perfect(gt, 256.0), 256.0, InferenceConfig(min_size=int(sizes.min())))
    assert out.max() == 12
    assert same_partition(out, gt)


@pytest.mark.parametrize("first", [1, 2])
def test_candidates_visited_by_decreasing_seediness(first: int) -> None:
    # Cell 1 votes at (15, 17) with a 5 px kernel, cell 2 at (15, 20) with a 2 px kernel (3 px apart).
    # Cell 1's centre first: its kernel takes both cells. Cell 2's centre first: it takes only cell 2, then
    # cell 1's centre takes cell 1 (cell 2's pixels score higher at their own centre).
    scale = 256.0
    gt = np.zeros((30, 40), dtype=np.int32)
    gt[5:25, 5:19] = 1
    gt[5:25, 20:35] = 2  # column 19 is background: the 3x3 bandwidth smoothing never mixes the two cells
    rr, cc = np.nonzero(gt > 0)
    offsets = np.zeros((2, 30, 40))
    offsets[0, rr, cc] = (15 - rr) / scale
    offsets[1, rr, cc] = (np.where(gt[rr, cc] == 1, 17, 20) - cc) / scale
    bandwidths = np.full((2, 30, 40), bandwidth_for(2.0, scale))
    bandwidths[:, gt == 1] = bandwidth_for(5.0, scale)
    seediness = np.where(gt > 0, 0.8, 0.0)
    seediness[gt == first] = 0.9
    out = cluster_maps(offsets, bandwidths, seediness, scale, InferenceConfig(min_size=10))
    if first == 1:
        assert np.array_equal(out, (gt > 0).astype(np.int32))
    else:
        assert np.array_equal(out, np.where(gt == 2, 1, np.where(gt == 1, 2, 0)))


def _blocks(h: int, w: int, groups: list[tuple[tuple[int, int], int, int, float]]) -> tuple[np.ndarray, ...]:
    """Foreground pixels in groups; ``(pixel, row0, n, target_col)``: the pixel plus ``n - 1`` pixels laid out
    from row ``row0`` (50 per row), all shifted to ``(20, target_col)``. Returns offsets (scale 256),
    foreground and a per-pixel group index (-1 = background)."""
    group_of = np.full((h, w), -1)
    target_c = np.zeros((h, w))
    for g, (pixel, row0, n, col) in enumerate(groups):
        k = np.arange(n - 1)
        rows = np.r_[pixel[0], row0 + k // 50]
        cols = np.r_[pixel[1], k % 50]
        assert (group_of[rows, cols] == -1).all()
        group_of[rows, cols] = g
        target_c[rows, cols] = col
    fg = group_of >= 0
    rr, cc = np.mgrid[:h, :w]
    offsets = np.stack([(20.0 - rr) / 256.0, (target_c - cc) / 256.0]) * fg
    return offsets, fg, group_of


def _reassignment_case(
    n_a: int, n_moved: int, n_new: int, moved_col: float = 24.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Centre A at (20, 20) with ``n_a`` pixels, ``n_moved`` pixels shifted to (20, moved_col), centre G at
    (20, 26) with ``n_new`` pixels; kernel radius 5 px everywhere, A visited first. A takes the moved pixels
    (distance <= 4) but not G's (distance 6); with ``moved_col`` 24 they score higher at G (distance 2)."""
    offsets, fg, group_of = _blocks(
        60, 60, [((20, 20), 30, n_a, 20.0), ((25, 24), 34, n_moved, moved_col), ((20, 26), 36, n_new, 26.0)]
    )
    seediness = np.where(fg, 0.6, 0.0)
    seediness[20, 20] = 0.99
    seediness[20, 26] = 0.95
    bandwidths = np.full((2, 60, 60), bandwidth_for(5.0, 256.0))
    return offsets, bandwidths, seediness, group_of


def test_reassignment_accepted_when_few_pixels_were_assigned() -> None:
    offsets, bandwidths, seediness, group_of = _reassignment_case(n_a=60, n_moved=5, n_new=20)
    out = cluster_maps(offsets, bandwidths, seediness, 256.0, InferenceConfig(min_size=10))
    assert (out[group_of == 0] == 1).all()
    assert (out[group_of == 1] == 2).all()  # the moved pixels scored higher at G's centre
    assert (out[group_of == 2] == 2).all()


def test_no_reassignment_to_a_worse_centre() -> None:
    offsets, bandwidths, seediness, group_of = _reassignment_case(n_a=60, n_moved=5, n_new=20, moved_col=22.0)
    out = cluster_maps(offsets, bandwidths, seediness, 256.0, InferenceConfig(min_size=10))
    assert (out[group_of == 1] == 1).all()  # 2 px from A, 4 px from G: they stay with A
    assert (out[group_of == 2] == 2).all()


@pytest.mark.parametrize("n_new", [8, 10])
def test_reassignment_refused_when_half_was_already_assigned(n_new: int) -> None:
    # n_new = 10: exactly half of the 20 pixels G would take were assigned: "less than half" fails.
    offsets, bandwidths, seediness, group_of = _reassignment_case(n_a=60, n_moved=10, n_new=n_new)
    out = cluster_maps(offsets, bandwidths, seediness, 256.0, InferenceConfig(min_size=10))
    assert sorted(np.unique(out)) == [0, 1]
    assert (out[group_of == 0] == 1).all()
    assert (out[group_of == 1] == 1).all()
    assert not out[group_of == 2].any()  # G never became an instance


def test_reassignment_refused_below_min_size() -> None:
    offsets, bandwidths, seediness, group_of = _reassignment_case(n_a=60, n_moved=3, n_new=8)
    out = cluster_maps(offsets, bandwidths, seediness, 256.0, InferenceConfig(min_size=12))
    assert sorted(np.unique(out)) == [0, 1]
    assert (out[group_of == 1] == 1).all()  # not taken by G (which would have had 11 px)
    out = cluster_maps(offsets, bandwidths, seediness, 256.0, InferenceConfig(min_size=11))
    assert sorted(np.unique(out)) == [0, 1, 2]


def test_instance_shrunk_below_min_size_is_removed() -> None:
    # A has 25 px when created; G takes 10 of them back and A ends with 15 < 20: A is dropped, G is label 1.
    # The case is built around the seeds' own shifted positions: the paper's rule, without moving centres.
    offsets, bandwidths, seediness, group_of = _reassignment_case(n_a=15, n_moved=10, n_new=20)
    out = cluster_maps(offsets, bandwidths, seediness, 256.0, InferenceConfig(min_size=20, refine_steps=0))
    assert sorted(np.unique(out)) == [0, 1]
    assert not out[group_of == 0].any()
    assert (out[(group_of == 1) | (group_of == 2)] == 1).all()


def test_absorbed_candidate_is_not_visited() -> None:
    # Candidate C at (20, 24) (6 votes) is absorbed by A (distance 4 < 5). Its own wide kernel (8 px) would
    # reach group G, which votes on background at (20, 30) and so has no candidate of its own: G stays
    # unassigned because absorbed candidates are removed from the list.
    offsets, fg, group_of = _blocks(
        60, 60, [((20, 20), 30, 30, 20.0), ((20, 24), 34, 6, 24.0), ((40, 55), 36, 20, 30.0)]
    )
    bandwidths = np.full((2, 60, 60), bandwidth_for(5.0, 256.0))
    bandwidths[:, 19:22, 23:26] = bandwidth_for(8.0, 256.0)
    seediness = np.where(fg, 0.6, 0.0)
    seediness[20, 20] = 0.99
    seediness[20, 24] = 0.95
    out = cluster_maps(offsets, bandwidths, seediness, 256.0, InferenceConfig(min_size=10))
    assert np.array_equal(out, np.isin(group_of, [0, 1]).astype(np.int32))


@pytest.mark.parametrize("n_votes", [5, 6])
def test_candidate_needs_more_than_min_votes(n_votes: int) -> None:
    offsets, fg, _ = _blocks(30, 60, [((20, 20), 25, n_votes, 20.0)])
    bandwidths = np.full((2, 30, 60), bandwidth_for(3.0, 256.0))
    out = cluster_maps(offsets, bandwidths, np.where(fg, 0.9, 0.0), 256.0, InferenceConfig(min_size=1, min_votes=5))
    assert np.array_equal(out, fg.astype(np.int32) if n_votes > 5 else np.zeros_like(out))


def test_bandwidth_smoothed_over_3x3() -> None:
    # The centre pixel alone has a 20 px kernel, its neighbours 2 px: smoothed (mean of the bandwidths) the
    # kernel is about 2.6 px and does not reach group G, 6 px away (G votes on background: no centre of its own).
    offsets, fg, group_of = _blocks(40, 60, [((20, 20), 25, 40, 20.0), ((38, 59), 30, 20, 26.0)])
    bandwidths = np.full((2, 40, 60), bandwidth_for(2.0, 256.0))
    bandwidths[:, 20, 20] = bandwidth_for(20.0, 256.0)
    seediness = np.where(fg, 0.6, 0.0)
    seediness[20, 20] = 0.9
    out = cluster_maps(offsets, bandwidths, seediness, 256.0, InferenceConfig(min_size=5))
    assert np.array_equal(out, (group_of == 0).astype(np.int32))
    bandwidths[:, 19:22, 19:22] = bandwidth_for(20.0, 256.0)  # now the whole neighbourhood is wide
    out = cluster_maps(offsets, bandwidths, seediness, 256.0, InferenceConfig(min_size=5))
    assert np.array_equal(out, fg.astype(np.int32))


def reference_cluster(
    offsets: np.ndarray, bandwidths: np.ndarray, seediness: np.ndarray, scale: float, params: InferenceConfig
) -> np.ndarray:
    """The §3.3 rules written plainly: every centre compared with every foreground pixel (no windows), the centre
    moved to the mean of the pixels it gathers ``refine_steps`` times."""
    h, w = seediness.shape
    if params.seed_window > 1:  # the mean over the window, edges replicated, written out
        k = params.seed_window
        padded_seed = np.pad(seediness, ((k // 2, (k - 1) // 2), (k // 2, (k - 1) // 2)), mode="edge")
        seediness = sum(padded_seed[dr : dr + h, dc : dc + w] for dr in range(k) for dc in range(k)) / k**2
    fg = seediness > params.seed_threshold
    rows, cols = np.nonzero(fg)
    e = np.stack([rows / scale + offsets[0][fg], cols / scale + offsets[1][fg]], axis=1)
    votes = np.zeros((h + 2, w + 2))
    for vy, vx in np.rint(e * scale).astype(int):
        if 0 <= vy < h and 0 <= vx < w:
            votes[vy + 1, vx + 1] += 1
    box = sum(votes[1 + dr : h + 1 + dr, 1 + dc : w + 1 + dc] for dr in (-1, 0, 1) for dc in (-1, 0, 1))
    padded = np.pad(bandwidths, ((0, 0), (1, 1), (1, 1)), mode="edge")
    smooth = sum(padded[:, 1 + dr : h + 1 + dr, 1 + dc : w + 1 + dc] for dr in (-1, 0, 1) for dc in (-1, 0, 1)) / 9
    index = -np.ones((h, w), dtype=int)
    index[fg] = np.arange(rows.size)
    cands = [(-seediness[r, c], r * w + c) for r, c in zip(*np.nonzero(fg & (box > params.min_votes)))]
    lab = np.zeros(rows.size, dtype=int)
    best = np.zeros(rows.size)
    n = 0
    for _, flat in sorted(cands):
        j = index[flat // w, flat % w]
        if lab[j]:
            continue
        s = np.exp(params.w_s * smooth[:, flat // w, flat % w])
        centre = e[j]
        d = np.exp(-((e[:, 0] - centre[0]) ** 2) / s[0] - (e[:, 1] - centre[1]) ** 2 / s[1])
        for _ in range(params.refine_steps):  # move the centre to the mean of what it gathers
            near = d > params.kernel_threshold
            if not near.any() or np.abs(e[near].mean(0) - centre).sum() * scale < 0.1:
                break
            centre = e[near].mean(0)
            d = np.exp(-((e[:, 0] - centre[0]) ** 2) / s[0] - (e[:, 1] - centre[1]) ** 2 / s[1])
        take = (d > params.kernel_threshold) & ((lab == 0) | (d > best))
        if take.sum() >= max(params.min_size, 1) and (take & (lab > 0)).sum() < 0.5 * take.sum():
            n += 1
            lab[take] = n
            best[take] = d[take]
    sizes = np.bincount(lab, minlength=n + 1)
    keep = np.flatnonzero(sizes >= params.min_size)
    out = np.zeros((h, w), dtype=np.int32)
    out[fg] = np.searchsorted(keep[keep > 0], lab, side="left") + 1
    out[fg] *= np.isin(lab, keep[keep > 0])
    return out


@pytest.mark.parametrize(
    ("seed", "radius", "noise", "shift"),
    [(0, 3.0, 1.0, 0.0), (1, 6.0, 2.0, 0.0), (2, 12.0, 3.0, 0.0), (3, 30.0, 6.0, 0.0), (4, 8.0, 2.0, 20.0),
     (5, 8.0, 2.0, -20.0)],
)
@pytest.mark.parametrize(("refine_steps", "seed_window"), [(0, 1), (2, 1), (2, 3)])
def test_windows_agree_with_comparing_every_pixel(seed: int, radius: float, noise: float, shift: float,
                                                  refine_steps: int, seed_window: int) -> None:
    # Noisy predictions on touching cells, kernels from 3 to 30 px (the buckets span many windows or many
    # buckets per window), shifted positions partly beyond the image (``shift`` px along both axes, more than
    # a bucket): the windowed search gives exactly the plain all-pixels answer.
    rng = np.random.default_rng(seed)
    gt = voronoi((80, 100), 10, rng)
    offsets, bandwidths, seediness = perfect(gt, 256.0, radius_px=radius)
    offsets += (rng.normal(0, noise, offsets.shape) + shift) / 256.0
    bandwidths += rng.normal(0, 0.02, bandwidths.shape)
    seediness = rng.uniform(0.4, 1.0, seediness.shape)
    params = InferenceConfig(min_size=15, refine_steps=refine_steps, seed_window=seed_window)
    out = cluster_maps(offsets, bandwidths, seediness, 256.0, params)
    assert out.max() >= 2
    assert np.array_equal(out, reference_cluster(offsets, bandwidths, seediness, 256.0, params))


def test_bad_inputs_raise() -> None:
    seediness = np.zeros((8, 8))
    with pytest.raises(EmbedTrackError, match="offsets"):
        cluster_maps(np.zeros((2, 8, 9)), np.zeros((2, 8, 8)), seediness, 256.0)
    with pytest.raises(EmbedTrackError, match="bandwidths"):
        cluster_maps(np.zeros((2, 8, 8)), np.zeros((3, 8, 8)), seediness, 256.0)
    with pytest.raises(EmbedTrackError, match="scale"):
        cluster_maps(np.zeros((2, 8, 8)), np.zeros((2, 8, 8)), seediness, 0.0)
    with pytest.raises(EmbedTrackError, match="NaN"):
        cluster_maps(np.full((2, 8, 8), np.nan), np.zeros((2, 8, 8)), np.ones((8, 8)), 256.0)
    with pytest.raises(EmbedTrackError, match="kernel_threshold"):
        InferenceConfig(kernel_threshold=1.0)


def spread_cell(half_spread: float, radius_px: float, gap: float = 0.0) -> tuple[np.ndarray, ...]:
    """One 30x30 cell whose shifted positions lie on a horizontal line through its centre, spread evenly over
    ``centre +- half_spread`` px (a ``gap`` px wide empty band in the middle splits them into two piles). The
    most seedy pixel points to the left end, so a seed's own shifted position is far from the cell's centre."""
    h, w, scale = 40, 40, 256.0
    gt = np.zeros((h, w), dtype=np.int32)
    gt[5:35, 5:35] = 1
    rr, cc = np.nonzero(gt)
    rank = np.random.default_rng(0).permutation(rr.size) / (rr.size - 1)
    ex = 20 - half_spread + 2 * half_spread * rank
    ex = np.where(ex < 20, ex - gap / 2, ex + gap / 2)
    offsets = np.zeros((2, h, w))
    offsets[0, rr, cc] = (20 - rr) / scale
    offsets[1, rr, cc] = (ex - cc) / scale
    seediness = np.where(gt > 0, 0.8, 0.0)
    seed = np.argmin(ex)
    seediness[rr[seed], cc[seed]] = 0.95
    bandwidths = np.full((2, h, w), bandwidth_for(radius_px, scale))
    return offsets, bandwidths, seediness, gt


def test_moving_centres_keeps_a_spread_cell_whole() -> None:
    # Shifted positions spread over 12 px with a 6 px kernel: the seed at the left end gathers only the left
    # 7/12, and the rest becomes a second instance under the paper's rule; moving the centre to the mean of
    # what it gathers reaches (nearly) the whole cell.
    offsets, bandwidths, seediness, gt = spread_cell(6.0, 6.0)
    paper = cluster_maps(offsets, bandwidths, seediness, 256.0, InferenceConfig(min_size=100, refine_steps=0))
    assert paper.max() == 2
    moved = cluster_maps(offsets, bandwidths, seediness, 256.0, InferenceConfig(min_size=100, refine_steps=4))
    assert moved.max() == 1
    assert (moved[gt > 0] == 1).mean() > 0.95


@pytest.mark.parametrize(("gap", "reach", "instances"), [(2.0, 0.0, 2), (2.0, 2.0, 1), (14.0, 2.0, 2)])
def test_merge_reach_joins_piles_closer_than_the_reach(gap: float, reach: float, instances: int) -> None:
    # Two piles of shifted positions (each 3 px wide, kernel radius 3 px) with a gap between them: 2 px apart
    # (centres 5 px apart, within 2 kernel radii) they are one cell with merge_reach 2, 14 px apart they stay two.
    offsets, bandwidths, seediness, gt = spread_cell(3.0, 3.0, gap)
    params = InferenceConfig(min_size=50, refine_steps=2, merge_reach=reach)
    out = cluster_maps(offsets, bandwidths, seediness, 256.0, params)
    assert out.max() == instances
    assert (out[gt > 0] > 0).mean() > 0.95


def test_seed_window_removes_a_one_pixel_spur() -> None:
    gt = np.zeros((30, 30), dtype=np.int32)
    gt[8:22, 8:22] = 1
    offsets, bandwidths, seediness = perfect(gt, 256.0, radius_px=8.0)
    seediness[14, 22:27] = 0.9  # a 1-px wide spur of seediness leaving the cell ...
    offsets[:, 14, 22:27] = offsets[:, 14, 21:22]  # ... whose pixels point to the cell's centre
    raw = cluster_maps(offsets, bandwidths, seediness, 256.0, InferenceConfig(min_size=10))
    assert (raw[14, 22:27] == 1).all()
    smooth = cluster_maps(offsets, bandwidths, seediness, 256.0, InferenceConfig(min_size=10, seed_window=3))
    assert not smooth[14, 23:27].any()
    assert (smooth[9:21, 9:21] == 1).all()  # the cell's inside stays


def test_new_parameters_are_checked() -> None:
    with pytest.raises(ConfigError, match="refine_steps"):
        InferenceConfig(refine_steps=-1)
    with pytest.raises(ConfigError, match="merge_reach"):
        InferenceConfig(merge_reach=0.5)
    with pytest.raises(ConfigError, match="seed_window"):
        InferenceConfig(seed_window=0)
