"""Tests of ctc.evaluate (the py-ctcmetrics wrapper)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ctc.errors import CTCError, CTCFormatError
from ctc.evaluate import evaluate, parse_metrics
from tests.conftest import GT_TRACKS, gt_masks, write_result


def test_ground_truth_as_result_scores_one(dataset: Path, gt_result: Path, capsys: pytest.CaptureFixture[str]
                                           ) -> None:
    scores = evaluate(gt_result, dataset / "01_GT")
    assert list(scores)[:3] == ["SEG", "TRA", "DET"]
    assert scores["SEG"] == scores["TRA"] == scores["DET"] == 1.0
    assert capsys.readouterr().out == ""  # py-ctcmetrics' prints are silenced


def test_extra_metrics_on_request(dataset: Path, gt_result: Path) -> None:
    scores = evaluate(gt_result, dataset / "01_GT", ["lnk", "HOTA", "BC(1)", "IDF1"])
    assert list(scores)[:4] == ["LNK", "HOTA", "BC(1)", "IDF1"]
    assert scores["LNK"] == scores["HOTA"] == scores["BC(1)"] == scores["IDF1"] == 1.0


def test_missing_cell_lowers_scores(dataset: Path, tmp_path: Path) -> None:
    masks = gt_masks()
    for m in masks:
        m[m == 5] = 0
    res = write_result(tmp_path / "01_RES", masks, GT_TRACKS[:4])
    scores = evaluate(res, dataset / "01_GT")
    assert scores["DET"] < 1.0 and scores["TRA"] < 1.0
    assert scores["SEG"] < 1.0  # track 5 is in the SEG frame 3


def test_invalid_result_is_not_scored(dataset: Path, tmp_path: Path) -> None:
    masks = gt_masks()
    masks[2][masks[2] == 1] = 0
    res = write_result(tmp_path / "01_RES", masks, GT_TRACKS)
    with pytest.raises(CTCError, match=r"invalid CTC result, not scored: frame 2, label 1: label missing"):
        evaluate(res, dataset / "01_GT")


def test_folder_checks(dataset: Path, gt_result: Path, tmp_path: Path) -> None:
    with pytest.raises(CTCFormatError, match="nope: result folder not found"):
        evaluate(tmp_path / "nope", dataset / "01_GT")
    with pytest.raises(CTCFormatError, match="02_GT: ground-truth folder not found"):
        evaluate(gt_result, dataset / "02_GT")
    (gt_result / "mask004.tif").unlink()
    with pytest.raises(CTCFormatError, match=r"4 result masks, but the ground truth .*TRA has 5 frames"):
        evaluate(gt_result, dataset / "01_GT")
    shutil.rmtree(dataset / "01_GT" / "SEG")
    with pytest.raises(CTCFormatError, match=r"SEG: no man_segNNN.tif files, SEG cannot be computed"):
        evaluate(gt_result, dataset / "01_GT", ["SEG"])


@pytest.mark.parametrize("side", ["result", "ground truth"])
def test_a_fifo_track_file_is_named_as_such_not_missing(dataset: Path, gt_result: Path, side: str) -> None:
    import os

    track_file = gt_result / "res_track.txt" if side == "result" else dataset / "01_GT" / "TRA" / "man_track.txt"
    track_file.unlink()
    os.mkfifo(track_file)
    with pytest.raises(CTCFormatError, match=rf"{track_file.name}: is not a regular file \(a folder, FIFO"):
        evaluate(gt_result, dataset / "01_GT")


def test_parse_metrics() -> None:
    assert parse_metrics("seg, tra,DET,bc(2),SEG") == ["SEG", "TRA", "DET", "BC(2)"]
    with pytest.raises(CTCError, match="unknown metric 'FOO'"):
        parse_metrics("SEG,FOO")
    with pytest.raises(CTCError, match="no metric requested"):
        parse_metrics(" , ")


def test_threshold_scores_are_floats(dataset: Path, gt_result: Path) -> None:
    scores = evaluate(gt_result, dataset / "01_GT", ["TRA"])
    assert all(isinstance(v, float) for v in scores.values())
    assert "AOGM" in scores and np.isfinite(scores["AOGM"])


def test_lnk_alone_and_dependencies(dataset: Path, gt_result: Path) -> None:
    from ctc.evaluate import with_dependencies

    assert with_dependencies(["LNK"]) == ["LNK", "DET"]
    assert with_dependencies(["TRA", "LNK"]) == ["TRA", "LNK"]
    assert with_dependencies(["OP_CTB"]) == ["OP_CTB", "SEG", "TRA"]
    scores = evaluate(gt_result, dataset / "01_GT", ["LNK"])
    assert list(scores)[0] == "LNK" and scores["LNK"] == 1.0


GT_FAULTS = {  # man_track.txt lines of the hand-made sequence with one fault each, and what the error says
    "cycle": (["1 0 4 0", "2 0 1 3", "3 2 4 2", "4 2 4 2", "5 3 4 0"], "parent links form a cycle: 2 -> 3 -> 2"),
    "self-parent": (["1 0 4 0", "2 0 1 2", "3 2 4 2", "4 2 4 2", "5 3 4 0"], "track 2 is its own parent"),
    "huge-end": (["1 0 100000000000000000000 0", "2 0 1 0", "3 2 4 2", "4 2 4 2", "5 3 4 0"],
                 "line 1: end frame 100000000000000000000 is above 9999"),  # refused when the file is read
    "begin-after-end": (["1 4 0 0", "2 0 1 0", "3 2 4 2", "4 2 4 2", "5 3 4 0"],
                        "track ends (frame 0) before it begins (frame 4)"),
    "missing-parent": (["1 0 4 0", "2 0 1 0", "3 2 4 9", "4 2 4 2", "5 3 4 0"], "parent 9 is not a declared track"),
    "undeclared-label": (["1 0 4 0", "2 0 1 0", "3 2 4 2", "4 2 4 2"],
                         "label 5: label in the mask is not declared in man_track.txt"),
}


@pytest.mark.parametrize("fault", list(GT_FAULTS))
def test_a_faulty_ground_truth_is_reported_as_such_naming_its_file(dataset: Path, gt_result: Path,
                                                                   fault: str) -> None:
    lines, says = GT_FAULTS[fault]
    track_file = dataset / "01_GT" / "TRA" / "man_track.txt"
    track_file.write_text("".join(f"{line}\n" for line in lines))
    with pytest.raises(CTCError) as raised:
        evaluate(gt_result, dataset / "01_GT")
    message = str(raised.value)
    read_limit = fault == "huge-end"  # the track file's number limits refuse it before the CTC rules run
    assert message.startswith(f"{track_file}: {'' if read_limit else 'invalid CTC ground truth, not scored: '}")
    assert says in message and str(gt_result) not in message  # the result is not blamed


def test_a_faulty_result_is_reported_naming_the_result(dataset: Path, result_factory) -> None:  # type: ignore[no-untyped-def]
    res = result_factory("01_RES", gt_masks(), ["1 0 4 0", "2 0 1 2", "3 2 4 2", "4 2 4 2", "5 3 4 0"])
    with pytest.raises(CTCError) as raised:
        evaluate(res, dataset / "01_GT")
    message = str(raised.value)
    assert message.startswith(f"{res / 'res_track.txt'}: invalid CTC result, not scored: ")
    assert "track 2 is its own parent" in message and "01_GT" not in message


def test_seg_alone_does_not_need_a_valid_tracking_ground_truth(dataset: Path, gt_result: Path) -> None:
    (dataset / "01_GT" / "TRA" / "man_track.txt").write_text("1 0 4 0\n2 0 1 2\n")
    assert evaluate(gt_result, dataset / "01_GT", ["SEG"])["SEG"] == pytest.approx(1.0)


def test_the_ground_truth_is_checked_once_per_state_of_its_files(dataset: Path, gt_result: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import ctc.validate

    calls: list[Path] = []
    real = ctc.validate.validate_result
    monkeypatch.setattr(ctc.validate, "validate_result", lambda folder: calls.append(Path(folder)) or real(folder))
    for _ in range(3):
        evaluate(gt_result, dataset / "01_GT", ["DET"])
    assert calls.count(dataset / "01_GT" / "TRA") == 1 and calls.count(gt_result) == 3
    (dataset / "01_GT" / "TRA" / "man_track.txt").write_text("".join(f"{line}\n" for line in GT_FAULTS["cycle"][0]))
    with pytest.raises(CTCError, match="invalid CTC ground truth"):  # changed since: checked again
        evaluate(gt_result, dataset / "01_GT", ["DET"])
