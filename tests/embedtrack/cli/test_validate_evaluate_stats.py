"""CLI tests of `embedtrack validate`, `embedtrack evaluate` and `embedtrack stats`."""

from __future__ import annotations

import contextlib
import io
import json
import warnings
from pathlib import Path

from click.testing import CliRunner

from ctc.lineage import Track
from embedtrack.cli import main
from tests.conftest import GT_TRACKS, gt_masks, write_result


def _py_ctcmetrics_valid(res: Path) -> bool:
    from ctc_metrics.scripts.validate import validate_sequence

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return bool(validate_sequence(str(res), threads=1)["Valid"] == 1)


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_validate_ok(gt_result: Path) -> None:
    code, out = _run("validate", str(gt_result))
    assert code == 0 and out.strip() == f"{gt_result}: OK, valid CTC result"


def test_validate_reports_each_violation(tmp_path: Path) -> None:
    masks = gt_masks()
    masks[2][masks[2] == 1] = 0            # planted gap
    masks[1][28:31, 28:31] = 9             # undeclared label
    masks[4][:] = 0                        # empty frame (the tracks end before it)
    tracks = [Track(1, 0, 3, 0), GT_TRACKS[1], Track(3, 2, 3, 2), Track(4, 2, 3, 1),  # 4: parent ends too late
              Track(5, 3, 3, 0)]
    res = write_result(tmp_path / "RES", masks, tracks)
    code, out = _run("validate", str(res))
    assert code == 1
    assert "frame 2, label 1: label missing from the mask inside its track 0..3 (temporal gap)" in out
    assert "frame 1, label 9: label in the mask is not declared in res_track.txt" in out
    assert "frame 2, label 4: parent 1 ends at frame 3, not before its child 4 begins at frame 2" in out
    assert "warning: frame 4: empty frame (no cell in the mask)" in out
    assert "INVALID (3 error(s), 1 warning(s))" in out
    assert not _py_ctcmetrics_valid(res)


def test_validate_empty_frame_warns_and_strict_fails(tmp_path: Path) -> None:
    masks = gt_masks()
    masks[4][:] = 0
    tracks = [Track(t.label, t.begin, min(t.end, 3), t.parent) for t in GT_TRACKS]
    res = write_result(tmp_path / "RES", masks, tracks)
    code, out = _run("validate", str(res))
    assert code == 0 and "warning: frame 4: empty frame" in out and "OK, valid CTC result (1 warning(s))" in out
    code, out = _run("validate", "--strict", str(res))
    assert code == 1 and "INVALID (0 error(s), 1 warning(s))" in out


def test_validate_missing_folder(tmp_path: Path) -> None:
    code, out = _run("validate", str(tmp_path / "none"))
    assert code == 1 and "none: folder not found" in out


def test_evaluate_table_and_json(dataset: Path, gt_result: Path, tmp_path: Path) -> None:
    out_json = tmp_path / "scores.json"
    code, out = _run("evaluate", str(gt_result), str(dataset / "01_GT"), "--json", str(out_json))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].split() == ["metric", "value"]
    assert [line.split() for line in lines[2:5]] == [["SEG", "1.0000"], ["TRA", "1.0000"], ["DET", "1.0000"]]
    assert "Evaluate sequence" not in out  # py-ctcmetrics' own prints do not reach the user
    payload = json.loads(out_json.read_text())
    assert payload["scores"]["SEG"] == payload["scores"]["TRA"] == payload["scores"]["DET"] == 1.0
    code, out = _run("evaluate", str(gt_result), str(dataset / "01_GT"), "--metrics", "TRA,LNK", "--all")
    assert code == 0 and "LNK" in out and "AOGM" in out


def test_evaluate_errors(dataset: Path, gt_result: Path) -> None:
    code, out = _run("evaluate", str(gt_result), str(dataset / "01_GT"), "--metrics", "SEG,NOPE")
    assert code == 1 and "unknown metric 'NOPE'" in out
    code, out = _run("evaluate", str(gt_result), str(dataset / "09_GT"))
    assert code == 1 and "09_GT: ground-truth folder not found" in out


def test_stats_table(dataset: Path) -> None:
    code, out = _run("stats", str(dataset))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[1].split()[:2] == ["sequence", "source"]
    rows = {line.split()[0]: line.split() for line in lines[3:]}
    assert rows["01"][1] == "ST+GT/TRA" and rows["02"][1] == "ST"
    cells_last = len(set(gt_masks()[-1].ravel().tolist()) - {0})
    assert rows["01"][3] == rows["02"][3] == str(cells_last)


def test_stats_missing_dataset(tmp_path: Path) -> None:
    code, out = _run("stats", str(tmp_path / "none"))
    assert code == 1 and "dataset folder not found" in out
