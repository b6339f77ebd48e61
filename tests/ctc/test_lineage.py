"""Tests of ctc.lineage: the streaming LineageBuilder and repair()."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ctc.errors import CTCError
from ctc.lineage import MAX_LABEL, LineageBuilder, Track, relabel, repair, repair_plan
from ctc.validate import check_lineage, errors_only, present_labels


def _frame(*labels: int, size: int = 12) -> np.ndarray:
    """A frame with label k as a 2x2 square at a position given by its index."""
    out = np.zeros((size, size), np.int32)
    for i, label in enumerate(labels):
        r, c = divmod(i, size // 3)
        out[3 * r:3 * r + 2, 3 * c:3 * c + 2] = label
    return out


def _valid(builder: LineageBuilder, frames: list[np.ndarray]) -> list[str]:
    labels = {t: present_labels(f) for t, f in enumerate(frames)}
    return [str(v) for v in errors_only(check_lineage(labels, builder.tracks()))]


def test_continuation_new_and_division() -> None:
    b = LineageBuilder()
    out = [b.add_frame(0, _frame(7, 9), {})]
    out.append(b.add_frame(1, _frame(1, 2), {1: 7, 2: 9}))                 # both continue
    out.append(b.add_frame(2, _frame(3, 4, 5, 6), {3: 1, 4: 2, 5: 2}))     # 2 divides into 4, 5; 6 is new
    assert all(o.dtype == np.uint16 for o in out)
    assert b.tracks() == [Track(1, 0, 2, 0), Track(2, 0, 1, 0), Track(3, 2, 2, 2), Track(4, 2, 2, 2),
                          Track(5, 2, 2, 0)]
    assert present_labels(out[2]).tolist() == [1, 3, 4, 5]
    assert np.array_equal(out[1] > 0, _frame(1, 2) > 0)
    assert _valid(b, out) == []


def test_division_one_frame_mother_and_lost_cells() -> None:
    b = LineageBuilder()
    out = [b.add_frame(5, _frame(1, 2), {}),
           b.add_frame(6, _frame(1, 2), {1: 1, 2: 1}),   # 1 divides, 2 is lost (no link) -> new track
           b.add_frame(7, _frame(4), {4: 2})]
    tracks = b.tracks()
    assert tracks[0] == Track(1, 5, 5, 0) and tracks[1] == Track(2, 5, 5, 0)
    assert {t.parent for t in tracks if t.begin == 6} == {1}
    assert tracks[-1].end == 7
    assert [str(v) for v in errors_only(check_lineage({5 + i: present_labels(f) for i, f in enumerate(out)},
                                                      tracks))] == []


def test_empty_frame_ends_tracks(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ctc.lineage")
    b = LineageBuilder()
    frames = [_frame(1), _frame(), _frame(3)]
    out = [b.add_frame(0, frames[0], {}), b.add_frame(1, frames[1], {}), b.add_frame(2, frames[2], {3: 1})]
    assert not out[1].any() and b.empty_frames == [1]
    assert "frame 1 has no cells" in caplog.text
    assert b.tracks() == [Track(1, 0, 0, 0), Track(2, 2, 2, 0)]  # link across the empty frame is dropped
    assert _valid(b, out) == []


def test_frames_must_be_in_order() -> None:
    b = LineageBuilder()
    b.add_frame(0, _frame(1), {})
    with pytest.raises(CTCError, match="frame 2: frames must be added in order, the previous one was 0"):
        b.add_frame(2, _frame(1), {})
    with pytest.raises(CTCError, match="expected a 2-D integer label image"):
        b.add_frame(1, np.zeros((2, 2), float), {})


def test_error_before_uint16_overflow() -> None:
    b = LineageBuilder()
    full = np.arange(1, MAX_LABEL + 1, dtype=np.int32).reshape(255, 257)
    out = b.add_frame(0, full, {})
    assert int(out.max()) == MAX_LABEL
    with pytest.raises(CTCError, match=f"frame 1: more than {MAX_LABEL} tracks"):
        b.add_frame(1, _frame(1), {})


def test_random_streams_are_valid() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        b = LineageBuilder()
        frames: list[np.ndarray] = []
        prev: list[int] = []
        for t in range(8):
            labels = sorted(rng.choice(np.arange(1, 40), size=int(rng.integers(0, 8)), replace=False).tolist())
            links = {c: int(rng.choice(prev)) for c in labels if prev and rng.random() < 0.7}
            frames.append(b.add_frame(t, _frame(*labels), links))
            prev = labels
        assert _valid(b, frames) == []


# ------------------------------------------------------------------------------------------------- repair


def test_repair_splits_gap_and_relabels_densely() -> None:
    masks = [_frame(10), _frame(10), _frame(), _frame(10, 30)]
    fixed, tracks = repair(masks, [Track(10, 0, 3, 0), Track(30, 3, 3, 0)])
    assert tracks == [Track(1, 0, 1, 0), Track(2, 3, 3, 1), Track(3, 3, 3, 0)]
    assert [present_labels(m).tolist() for m in fixed] == [[1], [1], [], [2, 3]]
    assert fixed[0].dtype == np.uint16


def test_repair_drops_vanished_and_clears_parents(caplog: pytest.LogCaptureFixture) -> None:
    masks = [_frame(1), _frame(1), _frame(3, 4)]
    declared = [Track(1, 0, 1, 0), Track(2, 0, 1, 0), Track(3, 2, 2, 1), Track(4, 2, 2, 2)]
    fixed, tracks = repair(masks, declared)
    assert tracks == [Track(1, 0, 1, 0), Track(2, 2, 2, 1), Track(3, 2, 2, 0)]
    assert "dropping 1 declared track" in caplog.text


def test_repair_handles_undeclared_and_bad_parent() -> None:
    masks = [_frame(5), _frame(5, 6), _frame(6, 8)]
    declared = [Track(5, 0, 2, 0), Track(6, 1, 2, 5)]     # 5 does not end before 6 begins; 8 undeclared
    fixed, tracks = repair(masks, declared, first_frame=4)
    assert tracks == [Track(1, 4, 5, 0), Track(2, 5, 6, 0), Track(3, 6, 6, 0)]
    labels = {4 + i: present_labels(m) for i, m in enumerate(fixed)}
    assert errors_only(check_lineage(labels, tracks)) == []


def test_repair_parent_uses_last_piece_before_child() -> None:
    masks = [_frame(1), _frame(), _frame(1), _frame(2), _frame(2, 1)]
    fixed, tracks = repair(masks, [Track(1, 0, 4, 0), Track(2, 3, 4, 1)])
    # pieces of 1: frames 0, 2, 4; 2 begins at 3 -> its parent is the piece at frame 2
    by_begin = {(t.begin, t.end): t for t in tracks}
    assert by_begin[(3, 4)].parent == by_begin[(2, 2)].label
    assert by_begin[(4, 4)].parent == by_begin[(2, 2)].label
    labels = {i: present_labels(m) for i, m in enumerate(fixed)}
    assert errors_only(check_lineage(labels, tracks)) == []


def test_repair_random_results_become_valid() -> None:
    rng = np.random.default_rng(3)
    for _ in range(30):
        masks = [_frame(*rng.choice(np.arange(1, 12), size=int(rng.integers(0, 6)), replace=False).tolist())
                 for _ in range(7)]
        declared = [Track(int(k), int(rng.integers(0, 7)), int(rng.integers(0, 7)), int(rng.integers(0, 12)))
                    for k in range(1, 12) if rng.random() < 0.8]
        fixed, tracks = repair(masks, declared)
        labels = {i: present_labels(m) for i, m in enumerate(fixed)}
        assert errors_only(check_lineage(labels, tracks)) == []
        assert [t.label for t in tracks] == list(range(1, len(tracks) + 1))
        assert all(np.array_equal(f > 0, m > 0) for f, m in zip(fixed, masks))


def test_repair_plan_and_relabel_streaming() -> None:
    mapping, tracks = repair_plan({0: [0, 4], 1: [4], 2: []}, [Track(4, 0, 1, 0)])
    assert mapping == {0: {4: 1}, 1: {4: 1}, 2: {}} and tracks == [Track(1, 0, 1, 0)]
    assert relabel(np.array([[0, 4, 9]]), mapping[0]).tolist() == [[0, 1, 0]]
