"""The lineage stage after linking (embedtrack/inference/lineage.py): constructed sequences with one-frame errors of
segmentation come out as the true lineage through the Tracker, each correction can be switched off, given
masks stay untouched, and the stage keeps a bounded window while streaming."""

from __future__ import annotations

import numpy as np
import pytest

from ctc.divisions import match_divisions
from ctc.lineage import LineageBuilder, Track, division_count
from ctc.rules import check_lineage, errors_only
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.inference.lineage import LineageStage, lookahead
from embedtrack.inference.tracker import Tracker

SHAPE = (64, 96)
ALL = dict(division_min_frames=3, divide_apart=True, undo_merges=True, gap_frames=2, gap_reach=1.0,
           min_track_frames=2)
OFF = dict(division_min_frames=0, divide_apart=False, undo_merges=False, gap_frames=0, min_track_frames=0)


def disc(labels: np.ndarray, centre: tuple[float, float], radius: float, value: int) -> None:
    yy, xx = np.mgrid[: labels.shape[0], : labels.shape[1]]
    labels[(yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius**2] = value


def noisy_sequence() -> list[np.ndarray]:
    """10 frames: cell A (cut in two at frame 4), cell B (missed at frame 5), a one-frame speck at frame 3,
    cell C dividing at frame 6 into two daughters that stay apart."""
    frames = []
    for t in range(10):
        m = np.zeros(SHAPE, np.int32)
        disc(m, (15, 12 + t), 7, 1)  # A
        if t == 4:
            m[(m == 1) & (np.arange(SHAPE[1])[None, :] >= 16)] = 2  # A cut in two touching halves
        if t != 5:
            disc(m, (45, 15 + t), 7, 3)  # B
        if t == 3:
            disc(m, (55, 60), 2, 4)  # speck
        if t < 6:
            disc(m, (20, 70), 8, 5)  # C
        else:
            disc(m, (10, 70 - (t - 5)), 6, 6)
            disc(m, (32, 70 + (t - 5)), 6, 7)
        frames.append(m)
    return frames


def merged_sequence() -> list[np.ndarray]:
    """7 frames: cells D and E side by side, one instance (their union) at frame 3, separate again after."""
    frames = []
    for t in range(7):
        m = np.zeros(SHAPE, np.int32)
        disc(m, (30, 40), 7, 1)
        disc(m, (30, 53), 7, 2)
        if t == 3:
            m[m > 0] = 1
            m[30, 46:48] = 1
        frames.append(m)
    return frames


def overlap_linker(labels: np.ndarray, prev: np.ndarray, _pred: object) -> dict[int, int]:
    """§3.4 with zero offsets: each instance follows the instance at t-1 it overlaps most; a mask at t-1 with
    two claimants divides, with more none links."""
    cand = {}
    for v in np.unique(labels[labels > 0]):
        hit = prev[labels == v]
        hit = hit[hit > 0]
        if hit.size:
            values, counts = np.unique(hit, return_counts=True)
            cand[int(v)] = int(values[np.argmax(counts)])
    claims = {p: list(cand.values()).count(p) for p in cand.values()}
    return {c: p for c, p in cand.items() if claims[p] <= 2}


def tracker(**settings: object) -> Tracker:
    config = InferenceConfig(whole_cells=False).replace(**settings)
    return Tracker(config, segmenter=lambda frame: frame.astype(np.int32), linker=overlap_linker)


def shape_of(tracks: list[Track]) -> list[tuple[int, int, tuple[int, int] | None]]:
    """A lineage without its ids: (begin, end, parent's (begin, end) or None) per track, sorted."""
    by = {t.label: t for t in tracks}
    return sorted(((t.begin, t.end, (by[t.parent].begin, by[t.parent].end) if t.parent else None) for t in tracks),
                  key=str)


TRUE_NOISY = sorted([(0, 9, None), (0, 4, None), (6, 9, (0, 4)), (0, 5, None), (6, 9, (0, 5)), (6, 9, (0, 5))],
                    key=str)


def _check_valid(labels: list[np.ndarray], tracks: list[Track]) -> None:
    frames = {t: np.unique(m) for t, m in enumerate(labels)}
    assert errors_only(check_lineage(frames, tracks)) == []


def test_one_frame_split_miss_and_speck_come_out_as_the_true_lineage() -> None:
    result = tracker(**ALL).track(noisy_sequence())
    assert shape_of(result.tracks) == TRUE_NOISY
    assert len(result.tracks) == 6 and division_count(result.tracks) == 1
    cut = noisy_sequence()[4]
    assert len(np.unique(result.labels[4][(cut == 1) | (cut == 2)])) == 1  # the cut cell is whole again
    assert result.labels[3][55, 60] == 0  # speck removed
    _check_valid(result.labels, result.tracks)


def test_without_the_stage_the_errors_become_events() -> None:
    result = tracker(**OFF).track(noisy_sequence())
    assert division_count(result.tracks) == 2  # the cut cell and C
    assert len(result.tracks) == 9


@pytest.mark.parametrize("off, changed", [
    ({"division_min_frames": 0}, "split"), ({"gap_frames": 0}, "gap"), ({"min_track_frames": 0}, "speck")])
def test_each_correction_switches_off(off: dict[str, int], changed: str) -> None:
    tracks = tracker(**{**ALL, **off}).track(noisy_sequence()).tracks
    shape = shape_of(tracks)
    assert shape != TRUE_NOISY
    if changed == "split":
        assert division_count(tracks) == 2
    elif changed == "gap":
        assert (6, 9, None) in shape and (6, 9, (0, 4)) not in shape
    else:
        assert (3, 3, None) in shape


def test_a_division_whose_daughters_touch_waits_until_they_are_apart() -> None:
    frames = noisy_sequence()
    for t in (6, 7):  # C's daughters touch for two frames: the segmentation cut C before it divided
        frames[t][frames[t] == 7] = 0
        disc(frames[t], (20, 70), 8, 6)
        frames[t][frames[t] == 6] = 0
        disc(frames[t], (15, 70), 5, 6)
        disc(frames[t], (25, 70), 5, 7)
    on = tracker(**ALL).track(frames).tracks
    off = tracker(**{**ALL, "divide_apart": False}).track(frames).tracks
    assert {(t.begin, t.end) for t in on if t.parent and (t.begin, t.end) != (6, 9)} == {(8, 9)}
    assert {t.begin for t in off if t.parent and t.end == 9} == {6}


def test_a_merge_of_two_cells_for_one_frame_is_split_between_them() -> None:
    result = tracker(**ALL).track(merged_sequence())
    assert shape_of(result.tracks) == [(0, 6, None), (0, 6, None)]
    assert len(np.unique(result.labels[3])) == 3  # the merged instance cut in two
    only_off = tracker(**{**OFF, "undo_merges": False}).track(merged_sequence())
    assert division_count(only_off.tracks) == 1  # the merged instance "divides"
    assert division_count(tracker(**{**OFF, "undo_merges": True}).track(merged_sequence()).tracks) == 0


def test_given_masks_are_kept_and_only_relinked() -> None:
    frames = noisy_sequence()
    t = tracker(**ALL)
    result = t.track(frames, masks=frames)
    for got, given in zip(result.labels, frames):
        pairs = np.unique(np.stack([got.ravel(), given.ravel()]), axis=1)
        assert ((pairs[0] > 0) == (pairs[1] > 0)).all() and len(set(pairs[0])) == len(set(pairs[1]))
    shape = shape_of(result.tracks)
    assert (4, 4, None) in shape and (6, 9, (0, 4)) in shape and division_count(result.tracks) == 1
    merged = tracker(**ALL).track(merged_sequence(), masks=merged_sequence())
    assert len(merged.tracks) == 3 and division_count(merged.tracks) == 0  # E goes on across a gap
    edited = tracker(**ALL, edit_given_masks=True).track(frames, masks=frames)
    assert shape_of(edited.tracks) == TRUE_NOISY


def test_iter_track_streams_the_same_lineage_with_a_bounded_window() -> None:
    t = tracker(**ALL)
    stream = t.iter_track(noisy_sequence() * 1, prefetch=False)
    sizes = []
    results = []
    for result in stream:
        results.append(result)
        sizes.append(len(stream.lineage.window))
    assert [r.t for r in results] == list(range(10))
    assert shape_of(stream.tracks()) == TRUE_NOISY
    assert max(sizes) <= lookahead(t.config) + 4


def test_the_window_does_not_grow_with_the_sequence() -> None:
    stage = LineageStage(InferenceConfig(**ALL))
    frames = noisy_sequence()
    held = []
    for i in range(200):
        m = frames[i % 5].copy()
        stage.push(_Frame(i, m, overlap_linker(m, frames[(i - 1) % 5], None) if i else {}))
        held.append(len(stage.window))
    assert max(held) == max(held[:20]) <= lookahead(stage.config) + 4


class _Frame:
    def __init__(self, t: int, instances: np.ndarray, links: dict[int, int]) -> None:
        self.t, self.instances, self.links, self.shifted = t, instances, links, None
        self.labels = instances


def test_gap_links_in_the_builder_and_division_counts() -> None:
    b = LineageBuilder()
    one = np.zeros((4, 4), np.int32)
    one[1, 1] = 1
    b.add_frame(0, one, {})
    b.add_frame(1, np.zeros((4, 4), np.int32), {})
    b.add_frame(2, one, {}, parents={1: 1})
    assert b.tracks() == [Track(1, 0, 0, 0), Track(2, 2, 2, 1)]
    assert division_count(b.tracks()) == 0
    b.add_frame(3, one, {}, parents={1: 2})  # track 2 ended at 2: not before t-1, a continuation, dropped
    assert b.tracks()[-1] == Track(3, 3, 3, 0)


def test_division_matching() -> None:
    found = tracker(**OFF).track(noisy_sequence())
    true = tracker(**ALL).track(noisy_sequence())
    frames = dict(enumerate(found.labels)).__getitem__
    truth = dict(enumerate(true.labels)).__getitem__
    score = match_divisions(found.tracks, true.tracks, frames, truth)
    assert (score.found, score.true, score.matched) == (2, 1, 1)
    assert score.f1 == pytest.approx(2 / 3)
    assert match_divisions(true.tracks, true.tracks, truth, truth).f1 == 1.0
    late = match_divisions(found.tracks, true.tracks, lambda t: frames(max(t - 2, 0)), truth, tolerance=1)
    assert late.matched == 0


def test_a_daughter_the_linker_turned_away_is_restored_when_both_last() -> None:
    def picky_linker(labels: np.ndarray, prev: np.ndarray, pred: object) -> dict[int, int]:
        """The overlap linker with a min_daughter_ratio of 1: the smaller daughter starts a track of its own."""
        links = overlap_linker(labels, prev, pred)
        for mother in set(links.values()):
            kids = [k for k, p in links.items() if p == mother]
            if len(kids) == 2:
                del links[min(kids, key=lambda k: int((labels == k).sum()))]
        return links

    def run(**settings: object) -> list[Track]:
        config = InferenceConfig(whole_cells=False).replace(**{**ALL, **settings})
        segment = Tracker(config, segmenter=lambda frame: frame.astype(np.int32), linker=picky_linker)
        return segment.track(noisy_sequence()).tracks

    frames = noisy_sequence()
    assert frames[6][10, 70] and frames[6][32, 70]  # C's daughters at frame 6
    assert division_count(run(restore_divisions=True)) == 1
    assert division_count(run(restore_divisions=False)) == 0
