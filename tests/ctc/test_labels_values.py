"""Label values from files are never array sizes: a silver-truth label of 2**40 costs what a label of 5 does,
and negative or fractional labels are one error naming the file."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import tifffile

from ctc.errors import CTCFormatError
from ctc.labels import as_labels, label_stats
from ctc.overlap import name_by_markers, overlaps
from ctc.stats import dataset_stats
from embedtrack.training.data import link_by_overlap, load_dataset
from embedtrack.models.presets import PRESETS
from tests.conftest import write_dataset

HUGE = 2**40


def _st_relabelled(root: Path, old: int, new: int, dtype: type) -> Path:
    """Give label ``old`` of every silver-truth mask the value ``new`` (stored as ``dtype``)."""
    for path in sorted((root / "01_ST" / "SEG").glob("*.tif")):
        mask = tifffile.imread(path).astype(dtype)
        tifffile.imwrite(path, np.where(mask == old, new, mask).astype(dtype))
    return root


def test_overlap_tables_compact_huge_labels() -> None:
    a = np.array([[HUGE, HUGE, 0], [2, 2, 2]], np.uint64)
    b = np.array([[3, 0, 0], [3, HUGE + 1, HUGE + 1]], np.uint64)
    table = overlaps(a, b)
    assert list(zip(table.a.tolist(), table.b.tolist(), table.pixels.tolist())) == [(2, 3, 1), (2, HUGE + 1, 2),
                                                                                   (HUGE, 3, 1)]
    assert table.area_a([HUGE, 2]).tolist() == [2, 3] and table.of_smaller().tolist() == [1 / 2, 1.0, 1 / 2]
    labels, kept, dropped = name_by_markers(a, np.where(b == 3, 0, b))
    assert labels.tolist() == [[0, 0, 0], [HUGE + 1] * 3] and (kept, dropped) == (1, 1)


def test_label_stats_and_derived_links_compact_huge_labels() -> None:
    mask = np.zeros((4, 4), np.uint64)
    mask[:2, :2], mask[3, 3] = HUGE, 7
    present, ys, xs, areas = label_stats(mask)
    assert present.tolist() == [7, HUGE] and ys.tolist() == [3.0, 0.5] and areas.tolist() == [1, 4]
    linked = link_by_overlap([mask, np.where(mask == HUGE, 3, mask)])
    assert [np.unique(m).tolist() for m in linked] == [[0, 1, 2], [0, 1, 2]]


@pytest.mark.parametrize("value,dtype,needle", [(-5, np.int16, "negative labels (lowest -5)"),
                                                (2.5, np.float32, "dtype float32 holds values that are not labels")])
def test_negative_or_fractional_labels_are_one_error_naming_the_file(tmp_path: Path, value: float, dtype: type,
                                                                     needle: str) -> None:
    root = _st_relabelled(write_dataset(tmp_path / "DS", with_gt=True), 13, value, dtype)
    with pytest.raises(CTCFormatError, match=rf"01_ST/SEG/man_seg\d+\.tif: label image .*{re.escape(needle)}"):
        dataset_stats(root)
    with pytest.raises(CTCFormatError, match=rf"01_ST/SEG/man_seg\d+\.tif: label image .*{re.escape(needle)}"):
        load_dataset(root, PRESETS["DIC-C2DH-HeLa"], derive_links=True)


def test_huge_silver_truth_labels_give_the_statistics_and_links_of_small_ones(tmp_path: Path) -> None:
    small = write_dataset(tmp_path / "A", with_gt=True)
    huge = _st_relabelled(write_dataset(tmp_path / "B", with_gt=True), 13, HUGE, np.uint64)
    assert [s.overlap_p10 for s in dataset_stats(huge)] == [s.overlap_p10 for s in dataset_stats(small)]
    preset = PRESETS["DIC-C2DH-HeLa"]
    for derive in (False, True):
        got, want = load_dataset(huge, preset, derive)[0], load_dataset(small, preset, derive)[0]
        assert str(got.report) == str(want.report)
        pairs = np.unique(np.stack([np.concatenate([m.ravel() for m in got.labels]),
                                    np.concatenate([m.ravel() for m in want.labels])]), axis=1)
        assert len(set(pairs[0].tolist())) == len(set(pairs[1].tolist())) == pairs.shape[1]  # the same cells


def test_whole_float_labels_are_read_as_integers() -> None:
    assert as_labels(np.array([[0.0, 3.0]], np.float32), "m.tif").tolist() == [[0, 3]]
    with pytest.raises(CTCFormatError, match="m.tif: label image of dtype float64"):
        as_labels(np.array([[np.nan, 3.0]]), "m.tif")
