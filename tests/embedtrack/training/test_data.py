"""Tests of embedtrack.training.data: overlap linking, links, split, dataset checks."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ctc.errors import CTCFormatError
from embedtrack.training.data import (
    TrackedSequence,
    check_dataset,
    link_by_overlap,
    links_for,
    load_dataset,
    min_mask_size,
)
from embedtrack.errors import EmbedTrackError
from embedtrack.models.presets import get_preset
from tests.conftest import gt_masks

ST_PRESET = get_preset("PhC-C2DL-PSC")
GT_PRESET = get_preset("synth-fluo")


def _square(mask: np.ndarray, label: int, row: int, col: int, h: int, w: int | None = None) -> None:
    mask[row:row + h, col:col + (h if w is None else w)] = label


# ------------------------------------------------------------------------------------------- link_by_overlap


def test_link_by_overlap_keeps_slow_cells_and_renames_jumping_ones() -> None:
    frames = [np.zeros((64, 64), np.uint16) for _ in range(3)]
    _square(frames[0], 7, 10, 10, 8)  # A
    _square(frames[0], 3, 40, 40, 8)  # B
    _square(frames[1], 1, 11, 11, 8)  # A moved by one pixel, other local label
    _square(frames[1], 2, 5, 45, 8)  # B jumped far away
    _square(frames[2], 9, 12, 12, 8)  # A again
    out = link_by_overlap(frames)
    assert len(out) == 3 and all(o.dtype == np.uint16 for o in out)
    for o, f in zip(out, frames):  # relabelled consistently: same regions, one id per region
        assert np.array_equal(o > 0, f > 0)
        for local in np.unique(f[f > 0]):
            assert len(np.unique(o[f == local])) == 1
    a0, b0 = int(out[0][frames[0] == 7][0]), int(out[0][frames[0] == 3][0])
    assert a0 != b0
    assert int(out[1][frames[1] == 1][0]) == a0
    assert int(out[2][frames[2] == 9][0]) == a0
    b1 = int(out[1][frames[1] == 2][0])
    assert b1 not in (a0, b0)


def test_two_masks_on_one_only_the_mutual_best_continues() -> None:
    prev = np.zeros((40, 50), np.uint16)
    cur = np.zeros((40, 50), np.uint16)
    prev[10:20, 10:30] = 5
    cur[10:20, 10:22] = 2  # entirely inside the old mask
    cur[10:20, 22:34] = 1  # two thirds inside
    out = link_by_overlap([prev, cur])
    old = int(out[0][10, 10])
    assert int(out[1][10, 10]) == old
    assert int(out[1][10, 30]) not in (0, old)


def test_link_by_overlap_needs_half_the_smaller_mask() -> None:
    prev = np.zeros((20, 40), np.uint16)
    cur = np.zeros((20, 40), np.uint16)
    prev[5:15, 0:10] = 1
    cur[5:15, 6:16] = 1  # overlap 40 of 100 pixels
    out = link_by_overlap([prev, cur])
    assert int(out[1][10, 10]) != int(out[0][10, 5])
    out = link_by_overlap([prev, cur], min_overlap=0.4)
    assert int(out[1][10, 10]) == int(out[0][10, 5])


# ------------------------------------------------------------------------------------------- links_for


def test_links_for_same_track_division_and_absent_mother() -> None:
    prev = np.zeros((20, 20), np.uint16)
    cur = np.zeros((20, 20), np.uint16)
    _square(prev, 1, 0, 0, 3)
    _square(prev, 2, 10, 10, 3)
    _square(cur, 1, 1, 1, 3)  # same track
    _square(cur, 4, 10, 10, 2)  # daughter of 2, mother present at t-1
    _square(cur, 5, 15, 15, 2)  # daughter of 3, mother absent at t-1
    _square(cur, 6, 0, 15, 2)  # new track
    rows = links_for(cur, prev, {4: 2, 5: 3, 6: 0, 2: 0})
    assert rows.dtype == np.int64 and rows.shape[1] == 2
    assert sorted(map(tuple, rows.tolist())) == [(1, 1), (4, 2)]


def test_links_for_empty_frames() -> None:
    empty = np.zeros((4, 4), np.uint16)
    assert links_for(empty, empty, {}).shape == (0, 2)


# ------------------------------------------------------------------------------------------- split, min size


def _sequence(labels: list[np.ndarray]) -> TrackedSequence:
    return TrackedSequence("01", [m.astype(np.float16) for m in labels], labels, {})


@pytest.mark.parametrize(("frames", "train"), [(10, 9), (20, 18), (40, 36), (3, 2), (2, 2)])
def test_n_train_is_the_first_90_percent(frames: int, train: int) -> None:
    seq = _sequence([np.zeros((4, 4), np.uint16)] * frames)
    assert seq.n_train == train


def test_min_mask_size_is_half_the_first_percentile_of_training_areas() -> None:
    rng = np.random.default_rng(3)
    sides = rng.integers(6, 12, size=(10, 4))
    labels = []
    for t in range(10):
        m = np.zeros((64, 64), np.uint16)
        for k, side in enumerate(sides[t]):
            _square(m, k + 1, 16 * k, 5, int(side))
        labels.append(m)
    labels[9][60:62, 60] = 9  # a 2-pixel mask in the validation frame must not count
    areas = (sides[:9] ** 2).ravel()
    expected = int(np.percentile(areas, 1) / 2)
    assert expected > 1
    assert min_mask_size([_sequence(labels)]) == expected


def test_min_mask_size_without_masks_is_an_error() -> None:
    with pytest.raises(EmbedTrackError, match="hold no outlined masks"):
        min_mask_size([_sequence([np.zeros((4, 4), np.uint16)] * 3)])


# ------------------------------------------------------------------------------------------- dataset checks


def test_not_a_ctc_folder(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    with pytest.raises(CTCFormatError, match=f"{tmp_path}.*no sequence folders"):
        check_dataset(tmp_path, GT_PRESET)
    with pytest.raises(CTCFormatError, match="not found"):
        load_dataset(tmp_path / "missing", GT_PRESET)


def test_st_preset_without_silver_truth(dataset: Path) -> None:
    shutil.rmtree(dataset / "02_ST")
    with pytest.raises(EmbedTrackError, match=r"02_ST/SEG.*PhC-C2DL-PSC.*silver truth"):
        load_dataset(dataset, ST_PRESET)


def test_st_preset_without_tracking_gt_needs_derive_links(dataset: Path) -> None:
    with pytest.raises(EmbedTrackError, match=r"02_GT/TRA.*--derive-links"):
        check_dataset(dataset, ST_PRESET)
    sequences = load_dataset(dataset, ST_PRESET, derive_links=True)
    assert [s.name for s in sequences] == ["01", "02"]
    for seq in sequences:
        assert seq.report.derived_links and "derived" in str(seq.report)
        assert seq.parents == {}
        assert seq.report.kept == sum(len(np.unique(m)) - 1 for m in gt_masks()) and seq.report.dropped == 0
    track1 = [int(lab[3, 3 + 2 * t]) for t, lab in enumerate(sequences[1].labels)]  # moves 2 px per frame
    assert len(set(track1)) == 1 and track1[0] > 0


def test_st_preset_takes_track_ids_from_markers(dataset: Path) -> None:
    shutil.rmtree(dataset / "02")
    shutil.rmtree(dataset / "02_ST")
    (seq,) = load_dataset(dataset, ST_PRESET)
    assert not seq.report.derived_links and "man_track.txt" in str(seq.report)
    assert (seq.report.kept, seq.report.dropped) == (sum(len(np.unique(m)) - 1 for m in gt_masks()), 0)
    for lab, gt in zip(seq.labels, gt_masks()):
        assert np.array_equal(lab, gt)
    assert seq.parents == {1: 0, 2: 0, 3: 2, 4: 2, 5: 0}
    assert all(f.dtype == np.float16 for f in seq.frames)


def test_gt_preset_without_tracking_gt(dataset: Path) -> None:
    with pytest.raises(EmbedTrackError, match=r"02_GT/TRA.*synth-fluo"):
        load_dataset(dataset, GT_PRESET)


def test_gt_preset_uses_tracking_masks(dataset: Path) -> None:
    shutil.rmtree(dataset / "02")
    shutil.rmtree(dataset / "01_ST")  # not needed for GT presets
    (seq,) = load_dataset(dataset, GT_PRESET)
    for lab, gt in zip(seq.labels, gt_masks()):
        assert np.array_equal(lab, gt)
    assert seq.report.kept == sum(len(np.unique(m)) - 1 for m in gt_masks())


def test_markers_missing_for_a_frame(dataset: Path) -> None:
    shutil.rmtree(dataset / "02")
    (dataset / "01_GT" / "TRA" / "man_track004.tif").unlink()
    with pytest.raises(CTCFormatError, match=r"01_GT/TRA.*missing frame numbers \[4\]"):
        load_dataset(dataset, GT_PRESET)


def test_training_labels_and_stats_name_st_masks_alike(tmp_path: Path) -> None:
    """A segment holding one marker and a pixel of a second, whose rest lies in another segment: training
    labels and the Table-1 statistics both drop the two segments and keep only the one with a marker of its own."""
    from ctc.io import SequencePaths, frame_name, write_tiff, write_track_file
    from ctc.lineage import Track
    from ctc.stats import dataset_stats

    paths = SequencePaths(tmp_path / "DS", "01")
    for folder in (paths.raw, paths.st_seg, paths.gt_tra):
        folder.mkdir(parents=True)
    st = np.zeros((40, 40), np.uint16)
    markers = np.zeros_like(st)
    _square(st, 1, 0, 0, 10)
    _square(st, 2, 0, 10, 10)
    _square(st, 3, 25, 25, 10)
    _square(markers, 5, 2, 2, 3)
    _square(markers, 6, 5, 9, 1, 3)  # one pixel in segment 1, two in segment 2
    _square(markers, 7, 27, 27, 3)
    for t in range(3):
        write_tiff(paths.raw / frame_name("t", t, 3), (st * 50 + t).astype(np.uint16))
        write_tiff(paths.st_seg / frame_name("man_seg", t, 3), st)
        write_tiff(paths.gt_tra / frame_name("man_track", t, 3), markers)
    write_track_file(paths.gt_tra / "man_track.txt", [Track(k, 0, 2, 0) for k in (5, 6, 7)])
    seq = load_dataset(paths.dataset, ST_PRESET)[0]
    assert [np.unique(lab).tolist() for lab in seq.labels] == [[0, 7]] * 3
    assert (seq.report.kept, seq.report.dropped) == (3, 6)
    stats = dataset_stats(paths.dataset)[0]
    assert stats.source == "ST+GT/TRA" and stats.pairs == 2 and stats.overlap_p10 == 1.0
