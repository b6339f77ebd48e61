"""Tests of ctc.stats (cell counts and motility, paper Table 1 right half)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from ctc.errors import CTCFormatError
from ctc.stats import dataset_stats, overlaps_best_match, overlaps_same_label
from tests.conftest import N_FRAMES, SQUARES


def _expected_overlaps() -> list[float]:
    """Overlap of each square with itself in the next frame, from the square geometry (intersection/smaller)."""
    out = []
    for frames in SQUARES.values():
        for t in sorted(frames):
            if t + 1 in frames:
                (r0, c0, s0), (r1, c1, s1) = frames[t], frames[t + 1]
                dy = max(0, min(r0 + s0, r1 + s1) - max(r0, r1))
                dx = max(0, min(c0 + s0, c1 + s1) - max(c0, c1))
                out.append(dy * dx / min(s0 * s0, s1 * s1))
    return out


def test_overlap_of_moving_square() -> None:
    prev = np.zeros((20, 20), np.uint16)
    cur = np.zeros_like(prev)
    prev[2:7, 2:7] = 1
    cur[2:7, 4:9] = 1       # 5x5 square moved 2 px: 3 of 5 columns shared
    prev[10:14, 10:14] = 2
    cur[15:19, 15:19] = 2   # moved off its footprint
    assert overlaps_same_label(prev, cur).tolist() == [3 / 5, 0.0]
    cur_renamed = np.where(cur == 1, 7, np.where(cur == 2, 9, 0))
    assert overlaps_best_match(prev, cur_renamed).tolist() == [3 / 5]  # no intersection -> not matched


def test_dataset_stats_from_st_with_and_without_tracking(dataset: Path) -> None:
    stats = {s.sequence: s for s in dataset_stats(dataset)}
    expected = _expected_overlaps()
    last_cells = sum(1 for frames in SQUARES.values() if N_FRAMES - 1 in frames)
    assert stats["01"].source == "ST+GT/TRA" and stats["02"].source == "ST"
    for s in stats.values():
        assert s.frames == N_FRAMES and s.cells_last_frame == last_cells
        assert s.pairs == len(expected)
        assert s.overlap_p10 == pytest.approx(float(np.quantile(expected, 0.1)))
        assert s.overlap_median == pytest.approx(float(np.median(expected)))


def test_dataset_stats_from_gt_only(dataset: Path) -> None:
    shutil.rmtree(dataset / "01_ST")
    stats = dataset_stats(dataset)[0]
    assert stats.source == "GT/TRA" and stats.pairs == len(_expected_overlaps())


def test_dataset_without_annotations(dataset: Path) -> None:
    for name in ("01_ST", "01_GT", "02_ST"):
        shutil.rmtree(dataset / name)
    with pytest.raises(CTCFormatError, match="no sequence has silver truth"):
        dataset_stats(dataset)


def test_single_frame_gives_nan(dataset: Path) -> None:
    shutil.rmtree(dataset / "01_GT")
    for p in sorted((dataset / "01_ST" / "SEG").iterdir())[1:]:
        p.unlink()
    stats = dataset_stats(dataset)[0]
    assert stats.pairs == 0 and math.isnan(stats.overlap_p10)
