"""CLI tests of `embedtrack synth`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from click.testing import CliRunner

from ctc.io import read_tiff
from ctc.synth import SYNTH_PRESETS
from embedtrack.cli import main
from embedtrack.cli.synth import PRESET_NAMES


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_preset_choices_match_the_library() -> None:
    assert set(PRESET_NAMES) == set(SYNTH_PRESETS)


def test_synth_writes_dataset_and_refuses_to_clobber(tmp_path: Path) -> None:
    out = tmp_path / "DS"
    args = ["synth", str(out), "--preset", "bf", "--frames", "3", "--size", "48", "64", "--seed", "5"]
    code, text = _run(*args)
    assert code == 0, text
    assert f"wrote {out} (bf, 01+02, 3 frames of 48x64, seed 5)" in text
    first = read_tiff(out / "01" / "t002.tif")
    assert first.shape == (48, 64) and first.dtype == np.uint16
    assert (out / "02_GT" / "TRA" / "man_track.txt").is_file()
    assert len(list((out / "01_ST" / "SEG").glob("*.tif"))) == 3

    code, text = _run(*args[:-1], "6")
    assert code == 1
    assert f"Error: {out}: exists; use --overwrite to replace it" in text
    assert np.array_equal(read_tiff(out / "01" / "t002.tif"), first)

    code, text = _run(*args[:-1], "6", "--overwrite")
    assert code == 0, text
    assert not np.array_equal(read_tiff(out / "01" / "t002.tif"), first)


def test_synth_single_sequence(tmp_path: Path) -> None:
    code, text = _run("synth", str(tmp_path / "DS"), "--frames", "2", "--size", "48", "48", "--sequences", "01")
    assert code == 0, text
    assert sorted(p.name for p in (tmp_path / "DS").iterdir()) == ["01", "01_GT", "01_ST", "synth.json"]


def test_synth_bad_options(tmp_path: Path) -> None:
    code, text = _run("synth", str(tmp_path / "A"), "--preset", "dic")
    assert code == 2 and "Invalid value for '--preset'" in text
    code, text = _run("synth", str(tmp_path / "B"), "--sequences", "01,01")
    assert code == 2 and "--sequences" in text
    code, text = _run("synth", str(tmp_path / "C"), "--size", "8", "64")
    assert code == 2 and "--size" in text
    assert not any(tmp_path.iterdir())
