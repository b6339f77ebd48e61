"""A time-lapse in any of the accepted forms, opened lazily: :func:`open_frames`.

* a CTC sequence folder (``t000.tif``, ``t001.tif``, …): frame numbers from the names
  (:func:`ctc.io.open_sequence`);
* a folder of 2-D TIFF files with any names, taken in natural order (``img2.tif`` before ``img10.tif``) and
  numbered 0, 1, …;
* one ``T×Y×X`` TIFF stack (a multi-page TIFF such as Fiji or a microscope writes), frames numbered 0, 1, …;
* a ``T×Y×X`` zarr array or OME-Zarr image (:mod:`ctc.zarr_frames`; needs the optional extra ``zarr``), frames
  numbered 0, 1, ….

Every form gives an object with the interface of :class:`ctc.io.Sequence` (``indices``, ``ndigits``, ``shape``,
``dtype``, ``len()``, ``read(i)``, iteration) and a ``kind`` (``ctc``, ``folder``, ``stack`` or ``zarr``). Only headers
are read when opening; anything else is one :class:`~ctc.errors.CTCFormatError` naming the accepted forms.

This is the one way frames come in (docs/safety.md, "One way in"): every file taken as a frame is a regular file
(a FIFO, folder, device or broken link is named, never skipped), frame count and frame size are within
:mod:`ctc.limits` before anything is decoded, a stack's pages are frames whatever series they were written in
(a page of another size is named), and arrays in memory pass :func:`array_frames` / :func:`check_frame_array`.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Union

import numpy as np
import tifffile

from ctc.errors import CTCFormatError
from ctc.io import Sequence, default_ndigits, open_sequence, tiff_header
from ctc.limits import check_frame_count, check_frame_shape
from ctc.tiff import check_page, open_tiff, read_page, require_regular_file
from ctc.zarr_frames import ZarrFrames, is_zarr, open_zarr, zarr_stem

logger = logging.getLogger(__name__)

ACCEPTED = ("expected a CTC sequence folder (t000.tif, t001.tif, ...), a folder of 2-D TIFF files (any names, "
            "taken in natural order), one T×Y×X TIFF stack or a T×Y×X zarr array (OME-Zarr included; needs the "
            "extra zarr)")
TIFF_SUFFIXES = (".tif", ".tiff")
CTC_FRAME = re.compile(r"^t\d{3,4}\.tiff?$")


def natural_key(name: str) -> tuple[list[tuple[int, int | str]], str]:
    """Sort key putting ``img2.tif`` before ``img10.tif`` (runs of digits compare as numbers)."""
    parts = [(0, int(p)) if p.isdigit() else (1, p.lower()) for p in re.split(r"(\d+)", name) if p]
    return parts, name


@dataclass
class TiffStack:
    """The frames of one ``T×Y×X`` TIFF stack, read one at a time (memory-mapped when the file allows it)."""

    path: Path
    indices: list[int]
    ndigits: int
    shape: tuple[int, int]
    dtype: np.dtype
    kind: str = "stack"
    _mapped: np.ndarray | None = field(default=None, init=False, repr=False)
    _paged: bool = field(default=False, init=False, repr=False)

    def __len__(self) -> int:
        return len(self.indices)

    def read(self, i: int) -> np.ndarray:
        """Frame at position ``i``."""
        try:
            mapped = self._map()
            frame = np.array(mapped[i]) if mapped is not None else self._page(i)
        except CTCFormatError:
            raise
        except Exception as err:
            raise CTCFormatError(f"{self.path}: frame {i} could not be read ({err})") from err
        frame = np.squeeze(frame)
        if frame.shape != self.shape:
            raise CTCFormatError(f"{self.path}: frame {i} has shape {frame.shape}, expected {self.shape}")
        return frame

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.read(i)

    def _map(self) -> np.ndarray | None:
        """The whole stack memory-mapped (uncompressed, contiguous files), or None: pages are then decoded one
        at a time."""
        if self._mapped is None and not self._paged:
            try:
                self._mapped = tifffile.memmap(self.path, mode="r").reshape(len(self), *self.shape)
            except ValueError:  # compressed or not contiguous
                self._paged = True
                with open_tiff(self.path) as tif:
                    if len(tif.pages) == 1:  # the whole stack in one page (e.g. tifffile's planar samples)
                        self._mapped = read_page(tif.pages[0], self.path).reshape(len(self), *self.shape)
        return self._mapped

    def _page(self, i: int) -> np.ndarray:
        with open_tiff(self.path) as tif:
            pages = tif.pages
            if len(pages) != len(self):
                raise CTCFormatError(f"{self.path}: {len(pages)} pages for {len(self)} frames; save the stack "
                                     "with one page per frame")
            return read_page(pages[i], self.path)


Frames = Union[Sequence, TiffStack, ZarrFrames]


def open_frames(path: str | Path) -> Frames:
    """Open a CTC sequence folder, a folder of 2-D TIFFs, a ``T×Y×X`` TIFF stack or zarr array (see the module
    docstring)."""
    path = Path(path)
    if is_zarr(path):
        return open_zarr(path, ACCEPTED)
    if path.is_dir():
        names = tiff_names(path)
        ctc = [name for name in names if CTC_FRAME.match(name)]
        if ctc and len(ctc) != len(names):
            other = [name for name in names if not CTC_FRAME.match(name)]
            raise CTCFormatError(f"{path}: mixes CTC frame files ({', '.join(ctc[:2])}) with other TIFF files "
                                 f"({', '.join(other[:3])}); a folder holds either tNNN.tif frames or TIFFs taken "
                                 "in natural order, move the others out")
        return open_sequence(path) if ctc else open_tiff_folder(path, names)
    if path.is_symlink() and not path.exists():
        raise CTCFormatError(f"{path}: a link to a missing file; {ACCEPTED}")
    if not path.exists():
        raise CTCFormatError(f"{path}: not found; {ACCEPTED}")
    if path.suffix.lower() not in TIFF_SUFFIXES:
        raise CTCFormatError(f"{path}: not a TIFF file or a folder; {ACCEPTED}")
    return open_stack(path)


def tiff_names(folder: Path) -> list[str]:
    """The TIFF names of ``folder`` (hidden ones skipped), in natural order; each must be a regular file: a
    folder, FIFO, device or broken link of such a name is an error, never skipped (frame numbers would shift)."""
    names = sorted((e.name for e in os.scandir(folder)
                    if not e.name.startswith(".") and e.name.lower().endswith(TIFF_SUFFIXES)), key=natural_key)
    for name in names:
        require_regular_file(folder / name)
    return names


def array_frames(frames: Any, where: str = "frames") -> Any:
    """In-memory frames (any iterable of 2-D arrays): a ``T×Y×X`` array-like (numpy, zarr, dask, a lazy view) is
    checked by its shape (frame count, frame size, pixel limit) before any frame is read; each frame is checked
    again by :func:`check_frame_array` as it is taken."""
    shape = getattr(frames, "shape", None)
    if shape is not None and len(shape) == 3:
        check_frame_count(int(shape[0]), where)
        check_frame_shape((int(shape[1]), int(shape[2])), where)
    return frames


def check_frame_array(frame: Any, where: str) -> np.ndarray:
    """One in-memory frame as a numpy array: its declared shape is checked (2-D, size, pixel limit) before it is
    materialised, so a lazy 30000 x 30000 view is refused without allocating it."""
    shape = getattr(frame, "shape", None)
    if shape is not None and len(shape) == 2:
        check_frame_shape((int(shape[0]), int(shape[1])), where)
    array = np.asarray(frame)
    if array.ndim == 2:
        check_frame_shape(array.shape, where)
    return array


def sequence_name(path: Path) -> str:
    """A time-lapse's name: a folder's own, a stack file's without its suffix, a zarr store's without ``.zarr``
    (``movie.ome.zarr`` -> ``movie``); results are named after it (``<name>_RES``)."""
    return path.stem if path.is_file() else zarr_stem(path) if is_zarr(path) else path.name


def open_tiff_folder(folder: Path, names: list[str]) -> Sequence:
    """The 2-D TIFFs ``names`` of ``folder`` (:func:`tiff_names`), in natural order, numbered 0, 1, …"""
    if not names:
        raise CTCFormatError(f"{folder}: no TIFF files; {ACCEPTED}")
    check_frame_count(len(names), folder)
    files = [folder / name for name in names]
    if len(files) == 1:
        raise CTCFormatError(f"{files[0]}: the only TIFF of {folder}; a time-lapse needs several frames "
                             "(pass the file itself if it is a T×Y×X stack)")
    shape, dtype = tiff_header(files[0])
    for file in files[1:]:
        other, _ = tiff_header(file)
        if other != shape:
            raise CTCFormatError(f"{file}: frame has shape {other}, but {files[0].name} has {shape}")
    shown = names if len(names) <= 6 else names[:3] + ["..."] + names[-2:]
    logger.info("%s: %d TIFF files taken in natural order as frames 0..%d: %s", folder, len(names),
                len(names) - 1, ", ".join(shown))
    check_frame_shape(shape, files[0])
    return Sequence(folder, "", list(range(len(files))), files, default_ndigits(len(files)),
                    (int(shape[0]), int(shape[1])), dtype, kind="folder")


def open_stack(path: Path) -> TiffStack:
    """A multi-page TIFF (or one 3-D image) of shape ``T×Y×X``: one series (axes of length 1 before the last two
    are dropped), or several series of 2-D pages (a stack written page by page, or with pages of different
    dtypes), one frame per page."""
    with open_tiff(path) as tif:
        try:
            n_series, n_pages = len(tif.series), len(tif.pages)
            series = tif.series[0]
            in_series = len(series.pages)
            shape, dtype = tuple(int(s) for s in series.shape), np.dtype(series.dtype)
            first = tif.pages[0]
        except Exception as err:
            raise CTCFormatError(f"{path}: not a readable TIFF file ({err})") from err
        check_page(first, path)  # every page is checked again when it is read
        if n_series > 1 or in_series != n_pages:  # pages outside the first series are frames too
            return _page_stack(tif, path, n_pages)
    frames = [s for s in shape[:-2] if s != 1]
    if not frames:
        raise CTCFormatError(f"{path}: a single 2-D image of shape {shape}; {ACCEPTED}")
    if len(frames) != 1:
        raise CTCFormatError(f"{path}: image stack of shape {shape}; {ACCEPTED} (split channels or z first)")
    return _stack(path, frames[0], shape[-2:], dtype)


def _stack(path: Path, n_frames: int, frame: tuple[int, ...], dtype: np.dtype, paged: bool = False) -> TiffStack:
    check_frame_count(n_frames, path)
    check_frame_shape(frame, path)
    height, width = frame
    logger.info("%s: a stack of %d frames of %dx%d", path, n_frames, height, width)
    stack = TiffStack(path, list(range(n_frames)), default_ndigits(n_frames), (height, width), dtype)
    stack._paged = paged
    return stack


def _page_stack(tif: Any, path: Path, n_pages: int) -> TiffStack:
    """Every page a frame; all pages must have one 2-D shape (the first that differs is named)."""
    check_frame_count(n_pages, path)
    shapes, dtypes = [], []
    for page in tif.pages:
        check_page(page, path)
        shapes.append(tuple(int(s) for s in page.shape if s != 1) if len(page.shape) > 2 else tuple(page.shape))
        dtypes.append(np.dtype(page.dtype))
    for number, shape in enumerate(shapes[1:], start=2):
        if shape != shapes[0] or len(shape) != 2:
            raise CTCFormatError(f"{path}: page {number} of {n_pages} has shape {shape}, page 1 has {shapes[0]}; "
                                 "a stack's pages must be 2-D frames of one size")
    return _stack(path, n_pages, shapes[0], np.result_type(*dtypes), paged=True)
