"""Tests of ctc.lineage: the streaming LineageBuilder."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from ctc.errors import CTCError
from ctc.labels import label_set
from ctc.lineage import MAX_LABEL, LineageBuilder, Track
from ctc.rules import check_lineage, errors_only


def _frame(*labels: int, size: int = 12) -> np.ndarray:
    """A frame with label k as a 2x2 square at a position given by its index."""
    out = np.zeros((size, size), np.int32)
    for i, label in enumerate(labels):
        r, c = divmod(i, size // 3)
        out[3 * r:3 * r + 2, 3 * c:3 * c + 2] = label
    return out


def _valid(builder: LineageBuilder, frames: list[np.ndarray]) -> list[str]:
    labels = {t: label_set(f) for t, f in enumerate(frames)}
    return [str(v) for v in errors_only(check_lineage(labels, builder.tracks()))]


def test_continuation_new_and_division() -> None:
    b = LineageBuilder()
    out = [b.add_frame(0, _frame(7, 9), {})]
    out.append(b.add_frame(1, _frame(1, 2), {1: 7, 2: 9}))                 # both continue
    out.append(b.add_frame(2, _frame(3, 4, 5, 6), {3: 1, 4: 2, 5: 2}))     # 2 divides into 4, 5; 6 is new
    assert all(o.dtype == np.uint16 for o in out)
    assert b.tracks() == [Track(1, 0, 2, 0), Track(2, 0, 1, 0), Track(3, 2, 2, 2), Track(4, 2, 2, 2),
                          Track(5, 2, 2, 0)]
    assert label_set(out[2]).tolist() == [1, 3, 4, 5]
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
    assert [str(v) for v in errors_only(check_lineage({5 + i: label_set(f) for i, f in enumerate(out)},
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
