"""Tests of the linking of instances over time with tracking offsets (paper §3.4)."""

from __future__ import annotations

import numpy as np
import pytest

from embedtrack.errors import EmbedTrackError
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.inference.link import candidates as link_candidates
from embedtrack.inference.link import link as link_config

SCALE = 256.0
SHAPE = (40, 60)


def link(cur: np.ndarray, off: np.ndarray, prev: np.ndarray, scale: float = SCALE, **rules: object) -> dict[int, int]:
    """:func:`embedtrack.inference.link.link` with the coordinate scale and rules of an :class:`InferenceConfig`."""
    return link_config(cur, off, prev, InferenceConfig(coord_scale=scale, **rules))  # type: ignore[arg-type]


def candidates(cur: np.ndarray, off: np.ndarray, prev: np.ndarray, scale: float = SCALE,
               **rules: object) -> dict[int, int]:
    return link_candidates(cur, off, prev, InferenceConfig(coord_scale=scale, **rules))  # type: ignore[arg-type]


def offsets_to(labels_t: np.ndarray, targets: dict[int, tuple[float, float]], scale: float = SCALE) -> np.ndarray:
    """Tracking offsets moving every pixel of instance ``k`` at t to the pixel ``targets[k]`` (row, col)."""
    off = np.zeros((2, *labels_t.shape))
    for k, (r, c) in targets.items():
        rr, cc = np.nonzero(labels_t == k)
        off[0, rr, cc] = (r - rr) / scale
        off[1, rr, cc] = (c - cc) / scale
    return off


def box(labels: np.ndarray, value: int, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
    labels[r0:r1, c0:c1] = value
    return labels


def test_moving_cell() -> None:
    prev = box(np.zeros(SHAPE, np.int32), 7, 5, 15, 5, 15)
    cur = box(np.zeros(SHAPE, np.int32), 3, 9, 19, 8, 18)  # moved by (4, 3)
    off = np.zeros((2, *SHAPE))
    off[0][cur > 0] = -4 / SCALE
    off[1][cur > 0] = -3 / SCALE
    assert link(cur, off, prev, SCALE) == {3: 7}
    # Without the offsets, 58 of its 100 pixels land on background: background wins, a new track starts...
    assert link(cur, np.zeros((2, *SHAPE)), prev, SCALE) == {}
    # ... unless only hits on masks count.
    assert link(cur, np.zeros((2, *SHAPE)), prev, SCALE, background_competes=False) == {3: 7}


def test_offsets_decide_against_plain_overlap() -> None:
    prev = box(box(np.zeros(SHAPE, np.int32), 1, 5, 15, 5, 15), 2, 5, 15, 30, 40)
    cur = box(np.zeros(SHAPE, np.int32), 1, 5, 15, 5, 15)  # on top of 1, but its offsets point into 2
    assert link(cur, offsets_to(cur, {1: (10, 35)}), prev, SCALE) == {1: 2}


def test_division() -> None:
    prev = box(np.zeros(SHAPE, np.int32), 4, 10, 20, 10, 20)
    cur = box(box(np.zeros(SHAPE, np.int32), 1, 8, 14, 8, 22), 2, 16, 22, 8, 22)
    assert link(cur, offsets_to(cur, {1: (15, 15), 2: (15, 15)}), prev, SCALE) == {1: 4, 2: 4}


def test_cell_entering_and_leaving() -> None:
    prev = box(box(np.zeros(SHAPE, np.int32), 1, 5, 15, 5, 15), 2, 25, 35, 45, 55)
    cur = box(box(np.zeros(SHAPE, np.int32), 1, 5, 15, 5, 15), 5, 25, 35, 20, 30)
    # 5 points at background (entering); 2 at t-1 gets no candidate (leaving).
    off = offsets_to(cur, {1: (10, 10), 5: (30, 30)})
    assert link(cur, off, prev, SCALE) == {1: 1}
    assert candidates(cur, off, prev, SCALE) == {1: 1}


def test_three_way_claim_gives_new_tracks() -> None:
    prev = box(box(np.zeros(SHAPE, np.int32), 1, 10, 20, 10, 20), 2, 10, 20, 40, 50)
    cur = np.zeros(SHAPE, np.int32)
    for k, c0 in enumerate((2, 14, 26), start=1):
        box(cur, k, 25, 35, c0, c0 + 10)
    box(cur, 9, 2, 8, 40, 50)
    off = offsets_to(cur, {1: (15, 15), 2: (15, 15), 3: (15, 15), 9: (15, 45)})
    assert candidates(cur, off, prev, SCALE) == {1: 1, 2: 1, 3: 1, 9: 2}
    assert link(cur, off, prev, SCALE) == {9: 2}


def test_majority_of_mask_hits_wins_when_background_is_ignored() -> None:
    prev = box(box(np.zeros(SHAPE, np.int32), 1, 0, 10, 0, 10), 2, 0, 10, 20, 30)
    cur = box(np.zeros(SHAPE, np.int32), 3, 20, 30, 0, 10)  # 100 px
    rr, cc = np.nonzero(cur)
    # 50 px land on background, 20 on mask 1, 30 on mask 2.
    dest_r = np.where(rr < 25, 35, 5)
    dest_c = np.where(rr < 25, 50, np.where(rr < 27, 5, 25))
    off = np.zeros((2, *SHAPE))
    off[0, rr, cc] = (dest_r - rr) / SCALE
    off[1, rr, cc] = (dest_c - cc) / SCALE
    assert link(cur, off, prev, SCALE, background_competes=False) == {3: 2}
    assert link(cur, off, prev, SCALE) == {}  # by default the 50 background pixels beat mask 2's 30


def test_tie_goes_to_smaller_label() -> None:
    prev = box(box(np.zeros(SHAPE, np.int32), 8, 0, 10, 0, 10), 3, 0, 10, 20, 30)
    cur = box(np.zeros(SHAPE, np.int32), 1, 20, 30, 0, 10)
    rr, cc = np.nonzero(cur)
    off = np.zeros((2, *SHAPE))
    right = cc >= 5
    off[0, rr, cc] = (5 - rr) / SCALE
    off[1, rr, cc] = (np.where(right, 25, 5) - cc) / SCALE
    assert link(cur, off, prev, SCALE) == {1: 3}


def test_min_fraction() -> None:
    prev = box(np.zeros(SHAPE, np.int32), 1, 0, 10, 0, 10)
    cur = box(np.zeros(SHAPE, np.int32), 2, 20, 30, 20, 30)
    off = offsets_to(cur, {2: (35, 50)})  # background
    rr, cc = np.nonzero(cur)
    few = rr == 20  # 10 % of the pixels land on 1
    off[0, rr[few], cc[few]] = (5 - rr[few]) / SCALE
    off[1, rr[few], cc[few]] = (5 - cc[few]) / SCALE
    assert link(cur, off, prev, SCALE) == {}  # 90 % on background
    assert link(cur, off, prev, SCALE, background_competes=False) == {2: 1}
    assert link(cur, off, prev, SCALE, min_fraction=0.1, background_competes=False) == {2: 1}
    assert link(cur, off, prev, SCALE, min_fraction=0.2, background_competes=False) == {}


def test_shifted_pixels_clipped_to_the_image() -> None:
    prev = box(np.zeros(SHAPE, np.int32), 1, 0, 5, 55, 60)  # in the top-right corner
    cur = box(np.zeros(SHAPE, np.int32), 2, 5, 15, 40, 50)
    off = offsets_to(cur, {2: (-30, 90)})  # far beyond the corner: clipped onto it
    assert link(cur, off, prev, SCALE) == {2: 1}


def test_shifted_positions_rounded_to_the_nearest_pixel() -> None:
    prev = box(np.zeros(SHAPE, np.int32), 1, 10, 13, 0, 60)
    cur = box(np.zeros(SHAPE, np.int32), 2, 2, 8, 20, 30)
    assert link(cur, offsets_to(cur, {2: (9.6, 25)}), prev, SCALE) == {2: 1}
    assert link(cur, offsets_to(cur, {2: (9.4, 25)}), prev, SCALE) == {}


def test_same_answer_for_any_scale() -> None:
    prev = box(box(np.zeros(SHAPE, np.int32), 1, 10, 20, 10, 20), 2, 10, 20, 40, 50)
    cur = box(box(np.zeros(SHAPE, np.int32), 1, 22, 30, 10, 20), 2, 22, 30, 40, 50)
    for scale in (100.0, 256.0, 512.0):
        off = offsets_to(cur, {1: (15, 45), 2: (15, 15)}, scale)
        assert link(cur, off, prev, scale) == {1: 2, 2: 1}


def test_large_and_sparse_labels() -> None:
    prev = box(box(np.zeros(SHAPE, np.int64), 3_000_000, 10, 20, 10, 20), 65_535, 10, 20, 40, 50)
    cur = box(box(np.zeros(SHAPE, np.int64), 2**40, 22, 30, 10, 20), 17, 22, 30, 40, 50)
    off = offsets_to(cur, {2**40: (15, 45), 17: (15, 15)})
    assert link(cur, off, prev, SCALE) == {2**40: 65_535, 17: 3_000_000}


@pytest.mark.parametrize("seed", [0, 1])
def test_sparse_pair_table_agrees_with_dense(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # Random labels and offsets with many ties: the sorting path (used for huge label counts) gives the same
    # candidates as the np.bincount table.
    import embedtrack.inference.link as link_module

    rng = np.random.default_rng(seed)
    prev = rng.integers(0, 6, size=(30, 30))
    cur = rng.integers(0, 8, size=(30, 30))
    off = rng.integers(-3, 4, size=(2, 30, 30)) / SCALE
    dense = candidates(cur, off, prev, SCALE, background_competes=False)
    monkeypatch.setattr(link_module, "_MAX_DENSE_PAIRS", 0)
    monkeypatch.setattr(link_module, "_MAX_DENSE_LABEL", 0)
    assert len(dense) == 7
    assert candidates(cur, off, prev, SCALE, background_competes=False) == dense
    assert link(cur, off, prev, SCALE) == link_module.link(cur, off, prev, InferenceConfig(coord_scale=SCALE))


def test_empty_frames() -> None:
    full = box(np.zeros(SHAPE, np.int32), 1, 0, 10, 0, 10)
    empty = np.zeros(SHAPE, np.int32)
    off = np.zeros((2, *SHAPE))
    assert link(empty, off, full, SCALE) == {}
    assert link(full, off, empty, SCALE) == {}


def test_bad_inputs_raise() -> None:
    lab = np.zeros(SHAPE, np.int32)
    off = np.zeros((2, *SHAPE))
    with pytest.raises(EmbedTrackError, match="labels_prev"):
        link(lab, off, np.zeros((4, 4), np.int32), SCALE)
    with pytest.raises(EmbedTrackError, match="track_offsets"):
        link(lab, off[:1], lab, SCALE)
    with pytest.raises(EmbedTrackError, match="integer"):
        link(lab.astype(float), off, lab, SCALE)
    with pytest.raises(EmbedTrackError, match="negative"):
        link(lab - 1, off, lab, SCALE)
    with pytest.raises(EmbedTrackError, match="scale"):
        link(lab, off, lab, -1.0)
    with pytest.raises(EmbedTrackError, match="NaN"):
        link(box(lab.copy(), 1, 0, 2, 0, 2), np.full((2, *SHAPE), np.nan), box(lab.copy(), 1, 0, 2, 0, 2), SCALE)


def test_unequal_claimants_are_a_fragment_not_a_division() -> None:
    prev = box(np.zeros(SHAPE, np.int32), 1, 10, 30, 10, 30)
    cur = box(box(np.zeros(SHAPE, np.int32), 1, 10, 30, 10, 30), 2, 30, 33, 10, 14)  # 400 px cell + 12 px piece
    off = offsets_to(cur, {1: (20, 20), 2: (20, 20)})
    assert link(cur, off, prev, SCALE) == {1: 1}  # the large one continues, the piece starts a new track
    assert link(cur, off, prev, SCALE, min_daughter_ratio=0.0) == {1: 1, 2: 1}  # the paper's plain rule
    halves = box(box(np.zeros(SHAPE, np.int32), 1, 10, 30, 10, 20), 2, 10, 30, 20, 30)
    assert link(halves, offsets_to(halves, {1: (20, 20), 2: (20, 20)}), prev, SCALE) == {1: 1, 2: 1}
