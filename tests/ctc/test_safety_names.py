"""Issue 19: one parser of frame and sequence names (ASCII digits only, nothing skipped), only regular files
read, bounded metric arguments."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from ctc.errors import CTCError, CTCFormatError
from ctc.evaluate import parse_metrics
from ctc.io import find_sequences, open_sequence, read_track_file
from embedtrack.cli import main


def _frames(folder: Path, names: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        tifffile.imwrite(folder / name, np.zeros((4, 4), np.uint8))
    return folder


@pytest.mark.parametrize("odd", ["t98.tif", "t\u0660\u0660\u0664.tif", "t\uff10\uff10\uff15.tif", "t00005.tif"])
def test_a_frame_name_that_is_not_ascii_nnn_is_an_error_not_a_skip(tmp_path: Path, odd: str) -> None:
    folder = _frames(tmp_path / "01", ["t000.tif", "t001.tif", odd])
    with pytest.raises(CTCFormatError, match=rf"{odd}: not a frame name tNNN.tif \(3 or 4 ASCII digits"):
        open_sequence(folder)


def test_frames_98_to_102_with_two_digit_names_are_refused(tmp_path: Path) -> None:
    folder = _frames(tmp_path / "01", [f"t{i}.tif" for i in range(98, 103)])
    with pytest.raises(CTCFormatError, match="t9[89].tif: not a frame name"):
        open_sequence(folder)


def test_other_files_in_a_sequence_folder_are_ignored(tmp_path: Path) -> None:
    folder = _frames(tmp_path / "01", ["t000.tif", "t001.tif", "thumbs.tif"])
    (folder / "notes.txt").write_text("mine")
    assert open_sequence(folder).indices == [0, 1]


def test_sequence_names_are_ascii_digits_only(tmp_path: Path) -> None:
    for name in ("01", "\u00b2", "\u0660\u0661"):
        (tmp_path / name).mkdir()
    assert find_sequences(tmp_path) == ["01"]
    result = CliRunner().invoke(main, ["synth", str(tmp_path / "S"), "--sequences", "01,\u00b2"])
    assert result.exit_code == 2 and "--sequences" in result.output and not (tmp_path / "S").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_like_a_frame_or_track_file_is_refused_without_blocking(tmp_path: Path) -> None:
    folder = _frames(tmp_path / "01", ["t000.tif"])
    os.mkfifo(folder / "t001.tif")
    with pytest.raises(CTCFormatError, match="t001.tif: is not a regular file"):
        open_sequence(folder)
    os.mkfifo(tmp_path / "res_track.txt")
    with pytest.raises(CTCFormatError, match="res_track.txt: is not a regular file"):
        read_track_file(tmp_path / "res_track.txt")


@pytest.mark.parametrize("metric", ["BC(99999999999999999999)", "BC(100)", "BC(-1)", "BC(\u0661)"])
def test_bc_tolerance_is_bounded(metric: str) -> None:
    with pytest.raises(CTCError, match=r"BC\(i\) takes a whole number i from 0 to 99"):
        parse_metrics(metric)
    assert parse_metrics("BC(3)") == ["BC(3)"]


def test_synth_size_is_capped_before_any_allocation(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["synth", str(tmp_path / "S"), "--size", "40000", "40000"])
    assert result.exit_code == 1 and "--size 40000 40000: 1,600,000,000 pixels per frame, more than the limit" in \
        result.output and "EMBEDTRACK_MAX_PIXELS=1600000000" in result.output, result.output
    assert not (tmp_path / "S").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_named_like_a_mask_in_masks_is_refused_without_blocking(tmp_path: Path) -> None:
    import subprocess
    import sys

    raw = _frames(tmp_path / "01", ["t000.tif", "t001.tif", "t002.tif"])
    masks = tmp_path / "masks"
    masks.mkdir()
    for index in (0, 2):
        tifffile.imwrite(masks / f"mask{index:03d}.tif", np.pad(np.ones((2, 2), np.uint16), 1))
    os.mkfifo(masks / "mask001.tif")  # reading it would wait for a writer forever
    code = "import sys; from embedtrack.cli import main; sys.exit(main())"
    done = subprocess.run([sys.executable, "-c", code, "run", str(raw), "--model", "Fluo-N2DH-SIM+", "--masks",
                           str(masks), "--device", "cpu"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"})
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (f"Error: {masks / 'mask001.tif'}: is not a regular file (a folder, "
                                                    "FIFO or device); only regular files are read")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01", "masks"]


def test_a_huge_bc_tolerance_is_refused_by_evaluate_at_once(tmp_path: Path) -> None:
    import time

    tic = time.monotonic()
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "01_RES"), str(tmp_path / "01_GT"), "--metrics",
                                       "SEG,BC(99999999999999999999)"])
    assert time.monotonic() - tic < 5 and result.exit_code != 0
    assert "BC(i) takes a whole number i from 0 to 99" in result.output, result.output
