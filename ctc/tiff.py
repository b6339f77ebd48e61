"""The one way TIFF files are read: :func:`open_tiff` and :func:`read_page`, with the size limits applied.

Every frame, mask and stack of the ``ctc`` and ``embedtrack`` packages is read through this module, so that a
small file cannot make the reader allocate gigabytes. Before any pixel is decoded, a page is checked for

* the pixels it declares (its shape) and the pixels its decoder would write: a page is decoded tile by tile or
  strip by strip, and a 96 x 96 image whose header declares tiles of 16384 x 16384 would decode 268 million
  pixels; both must stay within ``EMBEDTRACK_MAX_PIXELS`` (:mod:`ctc.limits`);
* complex pixels, which are refused rather than silently cast to real numbers.

Every problem is one :class:`~ctc.errors.CTCFormatError` naming the file.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import tifffile

from ctc.errors import CTCFormatError
from ctc.limits import check_decoded_pixels, check_pixel_count


def require_regular_file(path: Path, what: str = "file") -> None:
    """Only regular files are read: a FIFO or device would block or never end, a folder is no file."""
    if not path.exists():
        if path.is_symlink():
            raise CTCFormatError(f"{path}: a link to a missing file; only regular files are read")
        raise CTCFormatError(f"{path}: {what} not found")
    if not path.is_file():
        raise CTCFormatError(f"{path}: is not a regular file (a folder, FIFO or device); only regular files are read")


@contextmanager
def open_tiff(path: str | Path) -> Iterator[tifffile.TiffFile]:
    """The open :class:`tifffile.TiffFile` of a regular file; tifffile's many error types become one
    :class:`CTCFormatError` naming the file (errors raised by the ``with`` body pass through unchanged)."""
    path = Path(path)
    require_regular_file(path)
    try:
        tif = tifffile.TiffFile(path)
    except FileNotFoundError:
        raise CTCFormatError(f"{path}: file not found") from None
    except Exception as err:  # tifffile raises many types for broken files
        raise CTCFormatError(f"{path}: not a readable TIFF file ({err})") from err
    with tif:
        yield tif


def check_page(page: Any, path: str | Path) -> None:
    """Refuse a page before decoding: too many declared or decoded pixels, or complex pixels."""
    check_pixel_count(tuple(int(s) for s in page.shape), path)
    check_decoded_pixels(math.prod(page.chunks) * math.prod(page.chunked), page.chunks,
                         "tiles" if page.is_tiled else "strips", path)
    check_dtype(np.dtype(page.dtype), path)


def check_dtype(dtype: np.dtype, path: str | Path) -> None:
    """Complex pixels have no meaning for a frame or a mask; they are refused instead of dropping a part."""
    if np.issubdtype(dtype, np.complexfloating):
        raise CTCFormatError(f"{path}: pixels are complex numbers ({dtype}); save the real part, the magnitude or "
                             "the phase as a real-valued image")


def read_page(page: Any, path: str | Path) -> np.ndarray:
    """The pixels of one page, checked by :func:`check_page` first."""
    check_page(page, path)
    try:
        return np.asarray(page.asarray())  # all its tiles or strips together are within the limit
    except Exception as err:
        raise CTCFormatError(f"{path}: not a readable TIFF file ({err})") from err


def tiff_header(path: str | Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of a single-image TIFF from its header only; checks it is 2-D, not truncated and within
    the size limits."""
    path = Path(path)
    size = path.stat().st_size if path.is_file() else 0
    with open_tiff(path) as tif:
        try:
            n_pages = len(tif.pages)
            page = tif.pages[0]
            shape = tuple(int(s) for s in page.shape)  # type: ignore[union-attr]
            dtype = np.dtype(page.dtype)  # type: ignore[union-attr]
            ends = [int(o) + int(c) for o, c in zip(page.dataoffsets, page.databytecounts)]  # type: ignore
        except Exception as err:
            raise CTCFormatError(f"{path}: not a readable TIFF file ({err})") from err
        if n_pages > 1:
            raise CTCFormatError(f"{path}: is a stack of {n_pages} images, expected a single 2-D frame")
        check_page(page, path)
    shape = tuple(s for s in shape if s != 1) if len(shape) > 2 else shape
    if len(shape) != 2:
        raise CTCFormatError(f"{path}: image has shape {shape}, expected a 2-D frame")
    if ends and max(ends) > size:
        raise CTCFormatError(f"{path}: truncated TIFF (image data ends at byte {max(ends)}, file has {size})")
    return shape, dtype


def read_tiff(path: str | Path) -> np.ndarray:
    """Read one 2-D frame. Unreadable, truncated, 3-D, multi-page or oversized files raise
    :class:`CTCFormatError`."""
    path = Path(path)
    with open_tiff(path) as tif:
        try:
            n_pages = len(tif.pages)
            page = tif.pages[0]
        except Exception as err:
            raise CTCFormatError(f"{path}: not a readable TIFF file ({err})") from err
        if n_pages > 1:
            raise CTCFormatError(f"{path}: is a stack of {n_pages} images, expected a single 2-D frame")
        array = read_page(page, path)
    if array.ndim > 2:
        array = np.squeeze(array)
    if array.ndim != 2:
        raise CTCFormatError(f"{path}: image has shape {array.shape}, expected a 2-D frame")
    return array
