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


def _img_folder(folder: Path, n: int = 5) -> list[Path]:
    folder.mkdir(exist_ok=True)
    paths = [folder / f"img{t}.tif" for t in range(n)]
    for path, frame in zip(paths, FRAMES):
        tifffile.imwrite(path, frame)
    return paths


@pytest.mark.parametrize("kind,message", [
    ("fifo", "not a regular file"), ("folder", "not a regular file"), ("dangling", "a link to a missing file"),
    ("device", "not a regular file")])
def test_a_frame_that_is_no_regular_file_is_named_not_skipped(tmp_path: Path, kind: str, message: str) -> None:
    """A FIFO, folder, broken link or link to a device among the frames would shift the frame numbers if it were
    skipped: it is one error naming it (and nothing blocks on the FIFO)."""
    import os

    paths = _img_folder(tmp_path / "movie")
    paths[3].unlink()
    if kind == "fifo":
        os.mkfifo(paths[3])
    elif kind == "folder":
        paths[3].mkdir()
    else:
        paths[3].symlink_to(tmp_path / "gone.tif" if kind == "dangling" else Path("/dev/zero"))
    with pytest.raises(CTCFormatError, match=rf"img3\.tif: .*{message}"):
        open_frames(tmp_path / "movie")


def test_one_ctc_name_among_others_does_not_switch_to_ctc_mode(tmp_path: Path) -> None:
    _img_folder(tmp_path / "movie")
    tifffile.imwrite(tmp_path / "movie" / "t000.tif", FRAMES[5])
    with pytest.raises(CTCFormatError, match=r"movie: mixes CTC frame files \(t000.tif\) with other TIFF files "
                                             r"\(img0.tif, img1.tif, img2.tif\)"):
        open_frames(tmp_path / "movie")


def test_a_stack_written_page_by_page_is_one_stack(tmp_path: Path) -> None:
    """TiffWriter writing one page at a time makes one series per page; a float32 page among uint16 pages is a
    series of its own: both are one T×Y×X stack when the pages agree in shape."""
    with tifffile.TiffWriter(tmp_path / "pages.tif") as tw:
        for frame in FRAMES[:5]:
            tw.write(frame)
    with tifffile.TiffWriter(tmp_path / "mixed.tif") as tw:
        for t, frame in enumerate(FRAMES[:5]):
            tw.write(frame.astype(np.float32) if t == 2 else frame)
    for name in ("pages.tif", "mixed.tif"):
        frames = open_frames(tmp_path / name)
        assert len(frames) == 5 and frames.shape == (12, 10), name
        np.testing.assert_array_equal(np.stack(list(frames)), FRAMES[:5], err_msg=name)
    assert open_frames(tmp_path / "mixed.tif").read(2).dtype == np.float32


def test_a_page_of_another_size_is_named_not_dropped(tmp_path: Path) -> None:
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, FRAMES[:5])
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16), append=True)  # a 6th page, a second series
    with pytest.raises(CTCFormatError, match=r"movie.tif: page 6 of 6 has shape \(8, 8\), page 1 has \(12, 10\)"):
        open_frames(path)


def test_a_stack_of_one_pixel_rows_is_not_called_a_2d_image(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "rows.tif", np.zeros((5, 1, 160), np.uint16))
    with pytest.raises(CTCFormatError, match=r"rows.tif: frames of 1 x 160 pixels; a frame needs at least 2"):
        open_frames(tmp_path / "rows.tif")
