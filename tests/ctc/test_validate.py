"""Tests of ctc.validate, including agreement with py-ctcmetrics' validate_sequence."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import tifffile

from ctc.lineage import Track
from ctc.rules import ERROR, WARNING, Violation, check_lineage, errors_only
from ctc.validate import validate_result
from tests.conftest import GT_TRACKS, gt_masks

Case = tuple[list[np.ndarray], list[Track]]


def _valid() -> Case:
    return gt_masks(), list(GT_TRACKS)


def _gap() -> Case:
    masks = gt_masks()
    masks[2][masks[2] == 1] = 0
    return masks, list(GT_TRACKS)


def _undeclared() -> Case:
    masks = gt_masks()
    masks[1][28:31, 28:31] = 9
    return masks, list(GT_TRACKS)


def _parent_late() -> Case:
    return gt_masks(), [*GT_TRACKS[:3], Track(4, 2, 4, 1), GT_TRACKS[4]]


def _parent_missing() -> Case:
    return gt_masks(), [*GT_TRACKS[:4], Track(5, 3, 4, 7)]


def _empty_frame() -> Case:
    masks = gt_masks()
    masks[2][:] = 0
    for t in (3, 4):  # the cells after the empty frame continue as new tracks
        for old, new in ((1, 6), (3, 7), (4, 8)):
            masks[t][masks[t] == old] = new
    return masks, [Track(1, 0, 1, 0), Track(2, 0, 1, 0), Track(5, 3, 4, 0), Track(6, 3, 4, 0),
                   Track(7, 3, 4, 0), Track(8, 3, 4, 0)]


def _duplicate() -> Case:
    return gt_masks(), [*GT_TRACKS, Track(5, 3, 4, 0)]


def _uint8() -> Case:
    return [m.astype(np.uint8) for m in gt_masks()], list(GT_TRACKS)


def _end_before_begin() -> Case:
    return gt_masks(), [*GT_TRACKS[:4], Track(5, 4, 3, 0)]


def _missing_inside_track() -> Case:
    masks = gt_masks()
    masks[1][masks[1] == 2] = 0
    return masks, list(GT_TRACKS)


def _outside_track() -> Case:
    return gt_masks(), [*GT_TRACKS[:4], Track(5, 4, 4, 0)]


def _no_tracks() -> Case:
    return gt_masks(), []


# name -> (case, expected error messages as (frame, label, message part); [] = valid)
CASES: dict[str, tuple[Callable[[], Case], list[tuple[int | None, int | None, str]]]] = {
    "valid": (_valid, []),
    "planted gap": (_gap, [(2, 1, "label missing from the mask inside its track 0..4 (temporal gap)")]),
    "undeclared label": (_undeclared, [(1, 9, "label in the mask is not declared in res_track.txt")]),
    "parent ends after child begins": (_parent_late, [(2, 4, "parent 1 ends at frame 4, not before its child 4 "
                                                             "begins at frame 2")]),
    "parent missing": (_parent_missing, [(3, 5, "parent 7 is not a declared track")]),
    "empty frame": (_empty_frame, []),
    "duplicate label": (_duplicate, [(None, 5, "declared 2 times in res_track.txt")]),
    "uint8 masks": (_uint8, []),
    "end before begin": (_end_before_begin, [(None, 5, "track ends (frame 3) before it begins (frame 4)"),
                                             (3, 5, "label in the mask outside its track 4..3"),
                                             (4, 5, "label in the mask outside its track 4..3")]),
    "declared label missing": (_missing_inside_track, [(1, 2, "label missing from the mask inside its track 0..1")]),
    "label outside its track": (_outside_track, [(3, 5, "label in the mask outside its track 4..4")]),
    "no tracks": (_no_tracks, [(None, None, "no tracks declared in res_track.txt")]),
}


def _py_ctcmetrics_valid(res: Path) -> bool:
    """py-ctcmetrics' verdict; it raises (assertion, reduction of an empty array) on some invalid results."""
    from ctc_metrics.scripts.validate import validate_sequence

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        try:
            return validate_sequence(str(res), threads=1)["Valid"] == 1
        except (AssertionError, ValueError):
            return False


@pytest.mark.parametrize("name", list(CASES))
def test_verdict_agrees_with_py_ctcmetrics(name: str, result_factory: Callable[..., Path]) -> None:
    make, expected = CASES[name]
    masks, tracks = make()
    res = result_factory("RES", masks, tracks)
    errors = errors_only(validate_result(res))
    assert (not errors) == _py_ctcmetrics_valid(res)
    got = [(v.frame, v.label, v.message) for v in errors]
    for frame, label, part in expected:
        assert any(f == frame and lab == label and part in msg for f, lab, msg in got), (part, got)
    if not expected:
        assert errors == []


def test_empty_frame_and_dtype_are_warnings(result_factory: Callable[..., Path]) -> None:
    res = result_factory("RES", *_empty_frame())
    found = validate_result(res)
    assert [(v.frame, v.severity) for v in found] == [(2, WARNING)]
    assert str(found[0]).startswith("warning: frame 2: empty frame")
    found = validate_result(result_factory("RES8", *_uint8()))
    assert {v.severity for v in found} == {WARNING} and "mask000.tif has dtype uint8" in found[0].message


# ----------------------------------------------- rules py-ctcmetrics does not check: stricter, on purpose


def test_unequal_shapes(result_factory: Callable[..., Path]) -> None:
    res = result_factory("RES", *_valid())
    tifffile.imwrite(res / "mask003.tif", np.pad(gt_masks()[3], ((0, 1), (0, 0))))
    assert [str(v) for v in errors_only(validate_result(res))] == [
        "frame 3: mask003.tif has shape (33, 32), mask000.tif has (32, 32)"]


def test_file_number_gap(result_factory: Callable[..., Path]) -> None:
    res = result_factory("RES", *_valid())
    (res / "mask002.tif").unlink()
    messages = [str(v) for v in errors_only(validate_result(res))]
    assert messages[0] == "frame 2: mask002.tif is missing (file numbers must be contiguous)"
    assert not any("label missing" in m for m in messages)  # the absent file is not blamed on the labels


def test_track_beyond_last_frame(result_factory: Callable[..., Path]) -> None:
    res = result_factory("RES", gt_masks(), [*GT_TRACKS[:4], Track(5, 3, 6, 0)])
    assert [str(v) for v in errors_only(validate_result(res))] == [
        "label 5: track 3..6 reaches beyond the mask frames 0..4"]


def test_unreadable_files_and_track_file(result_factory: Callable[..., Path], tmp_path: Path) -> None:
    res = result_factory("RES", *_valid())
    (res / "mask001.tif").write_bytes(b"garbage")
    (res / "res_track.txt").write_text("1 0 4 0\n2 0 x 0\n")
    messages = [str(v) for v in validate_result(res)]
    assert any("line 2 is not four non-negative integers" in m for m in messages)
    assert any(m.startswith("frame 1: ") and "mask001.tif: not a readable TIFF" in m for m in messages)
    assert [str(v) for v in validate_result(tmp_path / "nothing")] == [f"{tmp_path / 'nothing'}: folder not found"]


def test_float_masks(result_factory: Callable[..., Path]) -> None:
    res = result_factory("RES", [m.astype(np.float32) for m in gt_masks()], GT_TRACKS)
    assert errors_only(validate_result(res)) == [] and _py_ctcmetrics_valid(res)
    masks = [m.astype(np.float32) for m in gt_masks()]
    masks[0][0, 0] = 0.5
    res = result_factory("RESF", masks, GT_TRACKS)
    assert "non-integer values" in str(errors_only(validate_result(res))[0])


def test_check_lineage_pure() -> None:
    labels = {0: [1], 1: [1, 2], 2: [2, 3]}
    assert check_lineage(labels, [Track(1, 0, 1, 0), Track(2, 1, 2, 0), Track(3, 2, 2, 1)]) == []
    found = check_lineage(labels, [Track(1, 0, 1, 0), Track(2, 1, 2, 0), Track(3, 2, 2, 2)])
    assert found == [Violation(2, 3, "parent 2 ends at frame 2, not before its child 3 begins at frame 2", ERROR)]
    assert str(Violation(None, None, "x")) == "x" and str(Violation(1, 2, "y")) == "frame 1, label 2: y"


def test_ground_truth_tra_folder(dataset: Path) -> None:
    tra = dataset / "01_GT" / "TRA"
    assert validate_result(tra) == []
    (tra / "man_track.txt").write_text("1 0 4 0\n2 0 1 0\n3 2 4 2\n4 2 4 2\n")
    assert [str(v) for v in validate_result(tra)] == [
        "frame 3, label 5: label in the mask is not declared in man_track.txt",
        "frame 4, label 5: label in the mask is not declared in man_track.txt"]


def test_a_fifo_track_file_of_a_ground_truth_folder_is_named(dataset: Path) -> None:
    """Not taken for a result folder without masks: the FIFO is named as what it is."""
    import os

    tra = dataset / "01_GT" / "TRA"
    (tra / "man_track.txt").unlink()
    os.mkfifo(tra / "man_track.txt")
    assert [str(v).split(": ", 1)[1] for v in validate_result(tra)] == [
        "is not a regular file (a folder, FIFO or device); only regular files are read"]


def test_parent_cycles_and_self_parents_are_named() -> None:
    tracks = [Track(1, 0, 1, 3), Track(2, 2, 3, 1), Track(3, 4, 5, 2), Track(4, 0, 5, 4), Track(5, 2, 5, 1)]
    frames = {t: {1, 4} if t < 2 else {2, 4, 5} if t < 4 else {3, 4, 5} for t in range(6)}
    messages = [str(v) for v in check_lineage(frames, tracks)]
    cycles = [m for m in messages if "cycle" in m]
    assert cycles == ["label 1: parent links form a cycle: 1 -> 3 -> 2 -> 1"]  # once, not once per member
    assert "frame 0, label 4: track 4 is its own parent" in messages
    assert not [m for m in messages if "label 5" in m and ("cycle" in m or "own parent" in m)]  # 5 only hangs on it
