"""`open_frames`: CTC folders, folders of any-named TIFFs in natural order, T×Y×X stacks; one error otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

from ctc.errors import CTCFormatError
from ctc.frames import natural_key, open_frames

FRAMES = np.arange(7 * 12 * 10, dtype=np.uint16).reshape(7, 12, 10)


def test_natural_order_puts_numbers_in_numeric_order() -> None:
    names = ["img10.tif", "img2.tif", "IMG1.tif", "img_b.tif", "img_a.tif"]
    assert sorted(names, key=natural_key) == ["IMG1.tif", "img2.tif", "img10.tif", "img_a.tif", "img_b.tif"]


def test_folder_of_any_names_reads_in_natural_order(tmp_path: Path) -> None:
    for t, frame in enumerate(FRAMES):
        tifffile.imwrite(tmp_path / f"scan {5 * t}.tiff", frame)  # lexical order would put "scan 10" first
    (tmp_path / "notes.txt").write_text("ignored")
    frames = open_frames(tmp_path)
    assert frames.kind == "folder" and frames.indices == list(range(7)) and frames.shape == (12, 10)
    np.testing.assert_array_equal(np.stack(list(frames)), FRAMES)


@pytest.mark.parametrize("options", [{}, {"compression": "zlib"}, {"imagej": True}])
def test_stack_reads_every_frame(tmp_path: Path, options: dict[str, object]) -> None:
    tifffile.imwrite(tmp_path / "movie.tif", FRAMES, **options)
    frames = open_frames(tmp_path / "movie.tif")
    assert frames.kind == "stack" and len(frames) == 7 and frames.ndigits == 3
    np.testing.assert_array_equal(np.stack([frames.read(i) for i in (6, 0, 3)]), FRAMES[[6, 0, 3]])


def test_ctc_folder_keeps_its_frame_numbers(tmp_path: Path) -> None:
    for t, frame in enumerate(FRAMES):
        tifffile.imwrite(tmp_path / f"t{t + 4:03d}.tif", frame)
    frames = open_frames(tmp_path)
    assert frames.kind == "ctc" and frames.indices == list(range(4, 11))


@pytest.mark.parametrize("make,message", [
    (lambda p: p / "missing", "not found"),
    (lambda p: (p / "a.txt").write_text("x") and p / "a.txt", "not a TIFF file or a folder"),
    (lambda p: p, "no TIFF files"),
    (lambda p: tifffile.imwrite(p / "one.tif", FRAMES[0]) or p / "one.tif", "a single 2-D image"),
    (lambda p: tifffile.imwrite(p / "c.tif", np.zeros((2, 3, 8, 8), np.uint8)) or p / "c.tif", "stack of shape"),
])
def test_anything_else_is_one_error_naming_the_accepted_forms(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(CTCFormatError, match=message) as err:
        open_frames(make(tmp_path))
    assert "T×Y×X TIFF stack" in str(err.value) and "natural order" in str(err.value)


def test_folder_with_one_stack_points_to_the_file(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "movie.tif", FRAMES)
    with pytest.raises(CTCFormatError, match="pass the file itself"):
        open_frames(tmp_path)
