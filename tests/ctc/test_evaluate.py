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
