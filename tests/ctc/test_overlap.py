"""Tests of ctc.overlap: the overlap table, best and mutual best matches, and naming ST masks by markers."""

from __future__ import annotations

import numpy as np
import pytest

from ctc.errors import CTCFormatError
from ctc.overlap import best_match, mutual_best, name_by_markers, overlaps


def _square(mask: np.ndarray, label: int, row: int, col: int, h: int, w: int | None = None) -> None:
    mask[row:row + h, col:col + (h if w is None else w)] = label


def test_overlap_table_and_scores() -> None:
    a = np.array([[1, 1, 0], [2, 2, 2]])
    b = np.array([[3, 0, 0], [3, 4, 4]])
    table = overlaps(a, b)
    assert list(zip(table.a.tolist(), table.b.tolist(), table.pixels.tolist())) == [(1, 3, 1), (2, 3, 1), (2, 4, 2)]
    assert table.area_a([0, 1, 2, 7]).tolist() == [1, 2, 3, 0] and table.area_b([3, 4]).tolist() == [2, 2]
    assert table.of_smaller().tolist() == [1 / 2, 1 / 2, 2 / 2]
    assert table.iou().tolist() == [1 / 3, 1 / 4, 2 / 3]


def test_overlaps_refuses_bad_label_images() -> None:
    with pytest.raises(CTCFormatError, match="different shapes"):
        overlaps(np.zeros((2, 2), int), np.zeros((2, 3), int))
    with pytest.raises(CTCFormatError, match="negative"):
        overlaps(np.full((2, 2), -1), np.zeros((2, 2), int))
    with pytest.raises(CTCFormatError, match="dtype float"):
        overlaps(np.zeros((2, 2)), np.zeros((2, 2), int))


def test_best_match_ties_go_to_the_smaller_label_whatever_the_order() -> None:
    keys, values, score = np.array([1, 1, 1, 2]), np.array([9, 4, 6, 9]), np.array([0.5, 0.5, 0.2, 0.1])
    assert best_match(keys, values, score) == {1: 4, 2: 9}
    order = np.array([3, 2, 1, 0])
    assert best_match(keys[order], values[order], score[order]) == {1: 4, 2: 9}


def test_mutual_best_keeps_only_pairs_that_choose_each_other() -> None:
    prev = np.zeros((10, 20), int)
    cur = np.zeros_like(prev)
    _square(prev, 1, 0, 0, 6)
    _square(cur, 5, 0, 0, 6)     # same place as 1
    _square(cur, 6, 0, 5, 6, 2)  # shares one column with 1, which prefers 5
    table = overlaps(cur, prev)
    assert mutual_best(table, table.pixels) == [(5, 1, 30)]  # 6 took one column of 5


def test_segment_covering_one_marker_takes_its_id_others_are_dropped() -> None:
    st = np.zeros((30, 30), np.uint16)
    markers = np.zeros((30, 30), np.uint16)
    _square(st, 3, 0, 0, 8)  # covers marker 21 only
    _square(markers, 21, 2, 2, 3)
    _square(st, 9, 10, 0, 8)  # covers no marker
    _square(st, 4, 20, 0, 8, 20)  # covers markers 22 and 23
    _square(markers, 22, 22, 1, 3)
    _square(markers, 23, 22, 12, 3)
    _square(markers, 24, 10, 20, 3)  # marker without a mask
    labels, kept, dropped = name_by_markers(st, markers)
    assert (kept, dropped) == (1, 2)
    expected = np.zeros(st.shape, np.int64)
    expected[st == 3] = 21
    assert np.array_equal(labels, expected)


def test_marker_claimed_by_two_segments_drops_both() -> None:
    st = np.zeros((20, 20), np.uint16)
    markers = np.zeros((20, 20), np.uint16)
    _square(st, 1, 0, 0, 6, 5)
    _square(st, 2, 0, 5, 6, 5)
    _square(markers, 7, 2, 3, 3, 4)  # straddles both masks
    _square(st, 5, 12, 12, 6)
    _square(markers, 8, 13, 13, 2)
    labels, kept, dropped = name_by_markers(st, markers)
    assert (kept, dropped) == (1, 2)
    assert set(np.unique(labels).tolist()) == {0, 8}
    assert np.array_equal(labels == 8, st == 5)


def test_segment_touching_a_second_marker_is_dropped_even_where_it_holds_most_of_the_first() -> None:
    """Segment 1 holds marker 5 and one pixel of marker 6, whose other pixels lie in segment 2: a rule naming
    each segment after the marker with most pixels in it would keep both, but neither covers a single marker
    of its own, so both are dropped (and counted)."""
    st = np.zeros((12, 24), np.uint16)
    markers = np.zeros_like(st)
    _square(st, 1, 0, 0, 10)
    _square(st, 2, 0, 10, 10)
    _square(markers, 5, 2, 2, 3)
    _square(markers, 6, 5, 9, 1, 3)  # one pixel in segment 1, two in segment 2
    labels, kept, dropped = name_by_markers(st, markers)
    assert (kept, dropped) == (0, 2) and not labels.any()


def test_name_by_markers_on_empty_frames() -> None:
    empty = np.zeros((5, 5), np.uint16)
    labels, kept, dropped = name_by_markers(empty, empty)
    assert (kept, dropped) == (0, 0) and not labels.any()
    st = empty.copy()
    st[1:3, 1:3] = 4
    labels, kept, dropped = name_by_markers(st, empty)
    assert (kept, dropped) == (0, 1) and not labels.any()
