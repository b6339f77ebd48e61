"""Size limits: a TIFF declaring an enormous frame is refused from its header; the limit can be raised."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile

from ctc.errors import CTCFormatError
from ctc.io import open_sequence, read_tiff, tiff_header


def _lying_tiff(path: Path, height: int, width: int) -> Path:
    """A 4x4 TIFF whose header claims ``height`` x ``width`` pixels (a few hundred bytes on disk)."""
    tifffile.imwrite(path, np.zeros((4, 4), np.uint8), compression="zlib")
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        spots = [(tags[name].valueoffset, tags[name].dtype, value)
                 for name, value in (("ImageWidth", width), ("ImageLength", height))]
    data = bytearray(path.read_bytes())
    for offset, dtype, value in spots:
        data[offset:offset + (2 if dtype == 3 else 4)] = struct.pack("<H" if dtype == 3 else "<I", value)
    path.write_bytes(bytes(data))
    return path


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
