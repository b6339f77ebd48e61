"""Tests of ctc.excerpt: a block of frames of a CTC sequence as a dataset of its own, GT cut to match."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ctc.errors import CTCResultExistsError
from ctc.excerpt import cut_tracks, write_excerpt
from ctc.io import open_sequence, open_tracking_gt, read_tiff, write_tiff, write_track_file, TRACK_FILE_GT
from ctc.lineage import Track
from ctc.rules import errors_only
from ctc.validate import validate_result


def test_cut_tracks_clips_spans_shifts_frames_and_drops_parents_outside() -> None:
    tracks = [Track(1, 0, 3, 0), Track(2, 4, 9, 1), Track(3, 4, 6, 1), Track(4, 7, 9, 3), Track(5, 0, 2, 0)]
    assert cut_tracks(tracks, 5, 9) == [Track(2, 0, 3, 0), Track(3, 0, 1, 0), Track(4, 2, 3, 3)]


def _dataset(root: Path, frames: int = 10) -> Path:
    for sub in ("01", "01_GT/TRA", "01_GT/SEG"):
        (root / sub).mkdir(parents=True)
    for t in range(frames):
        image = np.full((16, 16), t, np.uint16)
        markers = np.zeros((16, 16), np.uint16)
        markers[2:5, 2:5] = 1 if t < 4 else 2
        write_tiff(root / "01" / f"t{t:03d}.tif", image)
        write_tiff(root / "01_GT" / "TRA" / f"man_track{t:03d}.tif", markers)
        if t % 3 == 0:
            write_tiff(root / "01_GT" / "SEG" / f"man_seg{t:03d}.tif", markers * 10)
    write_track_file(root / "01_GT" / "TRA" / TRACK_FILE_GT, [Track(1, 0, 3, 0), Track(2, 4, frames - 1, 1)])
    return root


def test_excerpt_renumbers_frames_and_keeps_their_ground_truth(tmp_path: Path) -> None:
    source = _dataset(tmp_path / "DS")
    out = write_excerpt(source, "01", 3, 8, tmp_path / "cut")
    raw = open_sequence(out / "01")
    assert raw.indices == [0, 1, 2, 3, 4]
    assert [int(read_tiff(f)[0, 0]) for f in raw.files] == [3, 4, 5, 6, 7]  # frame t003 became t000
    markers, tracks = open_tracking_gt(out / "01_GT" / "TRA")
    assert tracks == [Track(1, 0, 0, 0), Track(2, 1, 4, 1)]
    assert sorted(p.name for p in (out / "01_GT" / "SEG").iterdir()) == ["man_seg000.tif", "man_seg003.tif"]
    assert not errors_only(validate_result(out / "01_GT" / "TRA"))


def test_excerpt_refuses_an_existing_folder_and_leaves_nothing_on_failure(tmp_path: Path) -> None:
    source = _dataset(tmp_path / "DS")
    (tmp_path / "cut").mkdir()
    with pytest.raises(CTCResultExistsError, match="cut"):
        write_excerpt(source, "01", 3, 8, tmp_path / "cut")
    with pytest.raises(Exception, match="hold 1 frame"):
        write_excerpt(source, "01", 9, 10, tmp_path / "other")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DS", "cut"]


def test_a_failed_excerpt_removes_the_parent_folders_it_created(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import ctc.excerpt

    source = _dataset(tmp_path / "DS")

    def full(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ctc.excerpt, "write_track_file", full)
    with pytest.raises(OSError):
        write_excerpt(source, "01", 3, 8, tmp_path / "a" / "b" / "cut")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DS"]
