"""Size limits on what ``evaluate`` hands to py-ctcmetrics, which reads files without any: ground-truth and
result TIFFs pass the TIFF checks, ``man_track.txt`` the track-file limits, before any of them is scored."""

from __future__ import annotations

from pathlib import Path

import pytest

from ctc.errors import CTCFormatError
from ctc.evaluate import evaluate
from ctc.io import MAX_TRACK_FILE_BYTES, read_track_file
from tests.conftest import SIZE
from tests.ctc.test_limits import _oversized_tiles


@pytest.mark.parametrize("folder,name,metrics", [("01_GT/TRA", "man_track002.tif", ["TRA"]),
                                                 ("01_GT/SEG", "man_seg003.tif", ["SEG"]),
                                                 ("01_GT/TRA", "man_track002.tif", ["SEG", "DET"])])
def test_ground_truth_tiles_beyond_the_limit_are_refused_before_scoring(
        dataset: Path, gt_result: Path, monkeypatch: pytest.MonkeyPatch, folder: str, name: str,
        metrics: list[str]) -> None:
    _oversized_tiles(dataset / folder / name, 256, SIZE)
    monkeypatch.setenv("EMBEDTRACK_MAX_PIXELS", str(SIZE * SIZE))
    with pytest.raises(CTCFormatError, match=rf"{name}: its tiles of 256 x 256 pixels would decode 65,536 pixels"):
        evaluate(gt_result, dataset / "01_GT", metrics)


@pytest.mark.parametrize("line,needle", [("1 0 100000000000000000000 0", r"line 2: end frame 100000000000000000000 "
                                                                          r"is above 9999"),
                                         ("70000 0 4 0", "line 2: label 70000 is above 65535"),
                                         ("6 0 4 " + "9" * 4000, r"line 2: parent 99999999\.\.\. \(4000 digits\) "
                                                                 "is above 65535")])
def test_track_file_numbers_beyond_the_ctc_ranges_are_refused(tmp_path: Path, line: str, needle: str) -> None:
    path = tmp_path / "man_track.txt"
    path.write_text(f"2 0 1 0\n{line}\n")
    with pytest.raises(CTCFormatError, match=f"man_track.txt: {needle}"):
        read_track_file(path)


def test_an_oversized_track_file_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "man_track.txt"
    with path.open("wb") as handle:
        handle.truncate(MAX_TRACK_FILE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(CTCFormatError, match=r"man_track.txt: track file of 16,777,217 bytes, more than"):
        read_track_file(path)


def test_evaluate_reads_the_ground_truth_track_file_within_the_limits(dataset: Path, gt_result: Path) -> None:
    with (dataset / "01_GT" / "TRA" / "man_track.txt").open("a") as handle:
        handle.write("7 0 100000000000000000000 0\n")
    with pytest.raises(CTCFormatError, match=r"man_track.txt: line 6: end frame 1000.* is above 9999"):
        evaluate(gt_result, dataset / "01_GT", ["SEG"])
