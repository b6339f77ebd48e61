"""Size limits: a TIFF declaring an enormous frame is refused from its header; the limit can be raised."""

from __future__ import annotations

import ast
import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile

from ctc.errors import CTCFormatError
from ctc.frames import open_frames
from ctc.io import open_sequence, read_tiff, tiff_header


def _lying_tiff(path: Path, height: int, width: int) -> Path:
    """A 4x4 TIFF whose header claims ``height`` x ``width`` pixels (a few hundred bytes on disk)."""
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8), compression="zlib")
    return _patch_size(path, height, width)


@pytest.mark.parametrize("read", [tiff_header, read_tiff, lambda p: open_sequence(p.parent)])
def test_tiny_file_declaring_a_huge_frame_is_refused(tmp_path: Path, read: object) -> None:
    path = _lying_tiff(tmp_path / "t000.tif", 200_000, 200_000)
    assert path.stat().st_size < 1000
    with pytest.raises(CTCFormatError, match=r"t000.tif: declares an image of 200000 x 200000 = 40,000,000,000 "
                                             r"pixels, more than the limit .* EMBEDTRACK_MAX_PIXELS=40000000000"):
        read(path)  # type: ignore[operator]


def test_the_limit_can_be_raised_and_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t000.tif"
    tifffile.imwrite(path, np.ones((16, 16), np.uint16))
    monkeypatch.setenv("EMBEDTRACK_MAX_PIXELS", "100")
    with pytest.raises(CTCFormatError, match="16 x 16 = 256 pixels, more than the limit of 100"):
        read_tiff(path)
    monkeypatch.setenv("EMBEDTRACK_MAX_PIXELS", "256")
    assert read_tiff(path).shape == (16, 16)
    for bad in ("lots", "-5", "nan", "0"):
        monkeypatch.setenv("EMBEDTRACK_MAX_PIXELS", bad)
        with pytest.raises(CTCFormatError, match=f"EMBEDTRACK_MAX_PIXELS={bad!r}: expected a positive number"):
            tiff_header(path)


def _oversized_tiles(path: Path, tile: int, size: int = 96) -> Path:
    """A ``size`` x ``size`` TIFF whose one tile is ``tile`` x ``tile`` pixels: zeros, a few hundred bytes
    compressed, but the decoder writes the whole tile."""
    tifffile.imwrite(path, np.zeros((tile, tile), np.uint16), tile=(tile, tile), compression="zlib")
    return _patch_size(path, size, size)


def _patch_size(path: Path, height: int, width: int) -> Path:
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        spots = [(tags[name].valueoffset, tags[name].dtype, value)
                 for name, value in (("ImageWidth", width), ("ImageLength", height))]
    data = bytearray(path.read_bytes())
    for offset, dtype, value in spots:
        data[offset:offset + (2 if dtype == 3 else 4)] = struct.pack("<H" if dtype == 3 else "<I", value)
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("read", [tiff_header, read_tiff, lambda p: open_sequence(p.parent).read(0),
                                  lambda p: open_frames(p.parent).read(0)])
def test_tiles_decoding_more_than_the_limit_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        read: object) -> None:
    """What is decoded counts, not only the declared frame: a 96 x 96 frame with a 256 x 256 tile."""
    path = _oversized_tiles(tmp_path / "t000.tif", 256)
    tifffile.imwrite(tmp_path / "t001.tif", np.zeros((96, 96), np.uint16))
    monkeypatch.setenv("EMBEDTRACK_MAX_PIXELS", "10000")  # above the 9,216 pixels the frame declares
    with pytest.raises(CTCFormatError, match=r"t000.tif: its tiles of 256 x 256 pixels would decode 65,536 pixels, "
                                             r"more than the limit of 10,000; .* EMBEDTRACK_MAX_PIXELS=65536"):
        read(path)  # type: ignore[operator]
    monkeypatch.setenv("EMBEDTRACK_MAX_PIXELS", "65536")
    assert read_tiff(path).shape == (96, 96)


def test_a_tiff_stack_checks_each_page_it_decodes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "stack.tif"
    frames = np.zeros((3, 64, 64), np.uint16)
    tifffile.imwrite(path, frames, tile=(32, 32), compression="zlib", photometric="minisblack")
    monkeypatch.setenv("EMBEDTRACK_MAX_PIXELS", "4096")
    stack = open_frames(path)
    assert stack.read(2).shape == (64, 64)
    monkeypatch.setenv("EMBEDTRACK_MAX_PIXELS", "4000")
    with pytest.raises(CTCFormatError, match="stack.tif: declares an image of 64 x 64"):
        stack.read(1)


@pytest.mark.parametrize("read", [tiff_header, read_tiff, lambda p: open_sequence(p.parent),
                                  lambda p: open_frames(p.parent / "stack.tif")])
def test_complex_pixels_are_refused(tmp_path: Path, read: object) -> None:
    """Complex frames are refused, not cast to their real part."""
    path = tmp_path / "t000.tif"
    tifffile.imwrite(path, np.full((8, 8), 1 + 2j, np.complex64))
    tifffile.imwrite(tmp_path / "stack.tif", np.full((3, 8, 8), 1 + 2j, np.complex128), photometric="minisblack")
    with pytest.raises(CTCFormatError, match=r"\.tif: pixels are complex numbers \(complex(64|128)\)"):
        read(path)  # type: ignore[operator]


def test_every_tiff_is_read_through_the_capped_reader() -> None:
    """Only ``ctc/tiff.py`` opens or decodes TIFF files: elsewhere tifffile only writes, or memory-maps an
    uncompressed stack whose pages ``ctc.frames`` checked through it."""
    repo = Path(__file__).resolve().parents[2]
    offenders = []
    for path in sorted(p for package in ("ctc", "embedtrack") for p in (repo / package).rglob("*.py")):
        if path == repo / "ctc" / "tiff.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tifffile"):
                offenders.append(f"{path.name}: from {node.module} import")
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "tifffile"
                    and node.attr not in ("imwrite", "memmap")):
                offenders.append(f"{path.name}: tifffile.{node.attr}")
    assert offenders == []
