"""`embedtrack evaluate` / `validate` with malformed track files: one error naming file and line, exit 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from embedtrack.cli import main
from tests.tree_state import tree_state


@pytest.mark.parametrize("line", ["1 0 4", "1 0 4 0 7", "1 0 ² 0", "1 0 4 -1", "1 0 4 0.0", "a b c d"])
def test_malformed_man_track_is_one_error(dataset: Path, gt_result: Path, line: str) -> None:
    track_file = dataset / "01_GT" / "TRA" / "man_track.txt"
    track_file.write_text("2 0 1 0\n" + line + "\n")
    before = tree_state(dataset.parent)
    result = CliRunner().invoke(main, ["evaluate", str(gt_result), str(dataset / "01_GT")])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"{track_file}: line 2 is not four non-negative integers" in result.output
    assert tree_state(dataset.parent) == before


@pytest.mark.parametrize("command", ["evaluate", "validate"])
def test_non_ascii_digit_in_res_track_is_one_error(dataset: Path, gt_result: Path, command: str) -> None:
    track_file = gt_result / "res_track.txt"
    track_file.write_text(track_file.read_text().replace("1 0 4 0", "1 0 ٤ 0"))
    args = [command, str(gt_result)] + ([str(dataset / "01_GT")] if command == "evaluate" else [])
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"{track_file}: line 1 is not four non-negative integers" in result.output
