"""What the terminal shows: `-q` hides the progress bars, a warning is written above the bar instead of through
it, the summary appears once; `python -m embedtrack` is the command."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile


@pytest.fixture(scope="module")
def seq_with_empty_frame(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from ctc.synth import generate_sequence

    seq = tmp_path_factory.mktemp("term") / "seq"
    seq.mkdir()
    for t, frame in enumerate(generate_sequence("fluo", 5, (96, 96), seed=5).images):
        tifffile.imwrite(seq / f"img{t}.tif", np.zeros_like(frame) if t == 2 else frame)  # frame 2: no cells
    return seq


def _embedtrack(*args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "embedtrack", *args], capture_output=True, text=True, env=env,
                          timeout=300, cwd=Path(__file__).resolve().parents[3])
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_warning_above_the_bar_and_one_summary(seq_with_empty_frame: Path) -> None:
    out = _embedtrack("run", str(seq_with_empty_frame), "--model", "Fluo-N2DH-SIM+", "--device", "cpu",
                      "--overwrite")
    segments = re.split(r"[\r\n]", out)
    assert any("frame/s]" in s for s in segments)  # the bar is shown
    warned = [s for s in segments if "has no cells" in s]
    assert len(warned) == 1 and warned[0].startswith("WARNING ctc.io:"), warned
    assert out.count("frames/s on cpu") == 1


@pytest.mark.parametrize("where", ["before the command name", "after it"])
def test_quiet_hides_bars_and_info(seq_with_empty_frame: Path, where: str) -> None:
    args = ["run", str(seq_with_empty_frame), "--model", "Fluo-N2DH-SIM+", "--device", "cpu", "--overwrite"]
    out = _embedtrack(*(["-q", *args] if where == "before the command name" else [*args, "-q"]))
    assert "frame/s]" not in out and "INFO" not in out and "embedtrack seq:" not in out
    assert "has no cells" in out and out.count("frames/s on cpu") == 1


def test_quiet_works_with_bars_that_choose_when_to_show(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from ctc import progress
    from embedtrack.cli import main

    out = CliRunner().invoke(main, ["-q", "synth", str(tmp_path / "d"), "--frames", "2", "--size", "64", "64",
                                    "--sequences", "01"])
    assert out.exit_code == 0, out.output
    assert progress.QUIET is False  # reset when the command ends
    out = CliRunner().invoke(main, ["-q", "validate", str(tmp_path / "d" / "01_GT" / "TRA")])
    assert "disable" not in out.output



@pytest.mark.parametrize("args,quiet,level,debug", [
    (["validate", "R", "-q"], True, "WARNING", False), (["validate", "--debug", "R"], False, "DEBUG", True),
    (["-q", "validate", "R", "-v"], True, "WARNING", False), (["validate", "R", "-v"], False, "DEBUG", False),
    (["validate", "R"], False, None, False)])
def test_output_options_after_the_command_name(monkeypatch: pytest.MonkeyPatch, args: list[str], quiet: bool,
                                                level: str | None, debug: bool) -> None:
    import logging

    import click
    from click.testing import CliRunner

    import ctc.validate
    from ctc import progress
    from embedtrack.cli import main

    seen = {}

    def probe(res_dir: Path) -> list[object]:  # what the command sees of -q, -v and --debug
        seen.update(quiet=progress.QUIET, level=logging.getLevelName(logging.getLogger().level),
                    debug=click.get_current_context().find_root().params["debug"])
        return []

    monkeypatch.setattr(ctc.validate, "validate_result", probe)
    before = logging.getLevelName(logging.getLogger().level)  # kept without options (pytest's handlers)
    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    assert seen == {"quiet": quiet, "level": level or before, "debug": debug}
    assert progress.QUIET is False and logging.getLevelName(logging.getLogger().level) == before  # put back
    assert "-q, --quiet" in CliRunner().invoke(main, ["validate", "-h"]).output
