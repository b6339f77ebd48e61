"""A ``T×Y×X`` zarr array as a time-lapse, read one frame at a time: :func:`open_zarr`.

The path is a zarr array (format 2 or 3), an OME-Zarr image (its highest-resolution array, the first of
``multiscales``; the time axis is the one OME-Zarr declares) or a zarr group holding one array. Axes of length
1 (OME-Zarr's channel and z of a 2-D time-lapse) are dropped; what remains must be ``T×Y×X``. Reading needs the
optional extra ``zarr``; without it the error says so. :func:`is_zarr` recognises a store without zarr.

Before any chunk is read, the store is checked like a TIFF (:mod:`ctc.tiff`): every file of the array is a
regular file (a FIFO chunk would block, a device never end), the frame count is within
:data:`ctc.limits.MAX_FRAMES`, and the chunks decoded to read one frame hold at most ``EMBEDTRACK_MAX_PIXELS``
pixels (a small array stored as one huge chunk would otherwise decode gigabytes).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ctc.errors import CTCFormatError
from ctc.io import default_ndigits
from ctc.limits import check_decoded_pixels, check_frame_count, check_frame_shape
from ctc.tiff import check_dtype

logger = logging.getLogger(__name__)

ZARR_FILES = (".zarray", ".zgroup", "zarr.json")
INSTALL = "pip install -c constraints.txt \".[zarr]\" in the embedtrack clone"


def is_zarr(path: Path) -> bool:
    """Whether ``path`` is a zarr array or group (a folder with zarr's metadata file, which :func:`open_zarr`
    then checks is a regular file)."""
    return path.is_dir() and any(os.path.lexists(path / name) for name in ZARR_FILES)


def zarr_stem(path: Path) -> str:
    """A store's name without ``.zarr`` / ``.ome.zarr`` (``movie.ome.zarr`` -> ``movie``)."""
    name = path.name
    for suffix in (".ome.zarr", ".zarr"):
        if name.lower().endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


@dataclass
class ZarrFrames:
    """The frames of a zarr array (the interface of :class:`ctc.io.Sequence`); ``index`` picks frame ``i`` of
    the full array (``None`` marks the time axis, 0 the dropped axes, ``slice`` the image axes)."""

    path: Path
    array: Any
    index: tuple[Any, ...]
    indices: list[int]
    ndigits: int
    shape: tuple[int, int]
    dtype: np.dtype
    kind: str = "zarr"

    def __len__(self) -> int:
        return len(self.indices)

    def read(self, i: int) -> np.ndarray:
        """Frame at position ``i``."""
        where = tuple(i if part is None else part for part in self.index)
        try:
            return np.asarray(self.array[where])
        except Exception as err:
            raise CTCFormatError(f"{self.path}: frame {i} could not be read ({type(err).__name__}: {err})") from err

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.read(i)


def open_zarr(path: Path, accepted: str) -> ZarrFrames:
    """Open the store at ``path`` (see the module docstring); ``accepted`` ends the messages about its shape."""
    array, time_axis = _image_array(_open_node(path), path)
    shape = tuple(int(s) for s in array.shape)
    kept = [axis for axis, size in enumerate(shape) if size != 1]
    if len(kept) == 2 or (time_axis is not None and time_axis not in kept):
        raise CTCFormatError(f"{path}: a single 2-D image; {accepted}")
    if len(kept) != 3:
        raise CTCFormatError(f"{path}: zarr array of shape {shape}; {accepted} (split channels or z first)")
    t_axis = time_axis if time_axis is not None else kept[0]
    height, width = (shape[a] for a in kept if a != t_axis)
    frames = shape[t_axis]
    check_frame_count(frames, path)
    check_frame_shape((height, width), path)
    index = tuple(None if a == t_axis else (slice(None) if a in kept else 0) for a in range(len(shape)))
    _check_chunks(array, index, path)
    logger.info("%s: a zarr array of %d frames of %dx%d", path, frames, height, width)
    return ZarrFrames(path, array, index, list(range(frames)), default_ndigits(frames), (height, width),
                      np.dtype(array.dtype))


def open_label_array(path: Path) -> Any:
    """A ``(T, Y, X)`` zarr array of label images (a geff store's segmentation), checked as a time-lapse is
    (regular files, frame count, frame size, chunks decoded per frame) and read lazily."""
    array = _open_node(path)
    if not hasattr(array, "shape") or len(array.shape) != 3:
        raise CTCFormatError(f"{path}: expected (T, Y, X) label images, got {getattr(array, 'shape', 'a group')}")
    check_frame_count(int(array.shape[0]), path)
    check_frame_shape((int(array.shape[1]), int(array.shape[2])), path)
    if not np.issubdtype(np.dtype(array.dtype), np.integer):
        raise CTCFormatError(f"{path}: label images of dtype {array.dtype}, expected integers")
    _check_chunks(array, (None, slice(None), slice(None)), path)
    return array


def _open_node(path: Path) -> Any:
    """The zarr array or group at ``path``, opened read-only (nothing decoded yet) once every file of the store
    is known to be a regular file (zarr would block on a FIFO metadata or chunk file)."""
    _check_files(path)
    try:
        import zarr
    except ImportError:
        raise CTCFormatError(f"{path}: a zarr store; reading it needs the optional extra 'zarr' ({INSTALL})") \
            from None
    try:
        return zarr.open(store=str(path), mode="r")
    except RecursionError:
        raise CTCFormatError(f"{path}: attributes nested too deeply to read") from None
    except Exception as err:
        raise CTCFormatError(f"{path}: not a readable zarr store ({type(err).__name__}: {err})") from err


def _check_chunks(array: Any, index: tuple[Any, ...], path: Path) -> None:
    """The dtype is real numbers, and the chunks one frame touches decode within the pixel limit."""
    dtype = np.dtype(array.dtype)
    if not (np.issubdtype(dtype, np.number) or dtype == bool):
        raise CTCFormatError(f"{path}: zarr array of dtype {dtype}, expected numbers")
    check_dtype(dtype, path)
    chunks = tuple(int(c) for c in array.chunks)
    touched = [-(-int(size) // c) if part == slice(None) else 1 for part, size, c in zip(index, array.shape, chunks)]
    check_decoded_pixels(math.prod(chunks) * math.prod(touched), chunks, "chunks", path)


def _check_files(store: Path) -> None:
    """Every file of the store is a regular file (a link to one included); links to folders are refused, so the
    walk stays inside the store."""
    for root, dirs, files in os.walk(store):
        for name in dirs:
            if (Path(root) / name).is_symlink():
                raise CTCFormatError(f"{store}: {(Path(root) / name).relative_to(store)} is a link to a folder; "
                                     "only the store's own folders are read")
        for name in files:
            file = Path(root) / name
            if not file.is_file():
                kind = "a link to a missing file" if not file.exists() else "not a regular file (a FIFO or device)"
                raise CTCFormatError(f"{store}: {file.relative_to(store)} is {kind}; only regular files are read")


def _image_array(node: Any, path: Path) -> tuple[Any, int | None]:
    """The array to read and its time axis (None: not declared): the node itself, an OME-Zarr image's first
    dataset, or a group's only array."""
    if hasattr(node, "shape"):
        return node, None
    attrs = dict(node.attrs)
    ome = attrs.get("ome")
    multiscales = attrs.get("multiscales") or (ome.get("multiscales") if isinstance(ome, dict) else None)
    if multiscales:
        dataset, axes = _ome_image(multiscales, path)
        time = [i for i, a in enumerate(axes) if a.get("type") == "time" or a.get("name") == "t"]
        try:
            array = node[dataset]
        except KeyError:
            raise CTCFormatError(f"{path}: OME-Zarr dataset path {dataset!r} not found in the store") from None
        if not hasattr(array, "shape") or (axes and len(axes) != len(array.shape)):
            raise CTCFormatError(f"{path}: OME-Zarr dataset {dataset!r} is not an array with the {len(axes)} axes "
                                 "the metadata declare")
        return array, (time[0] if time else None)
    arrays = sorted(name for name, _ in node.arrays())
    if len(arrays) != 1:
        raise CTCFormatError(f"{path}: a zarr group with {len(arrays)} arrays ({', '.join(arrays[:5]) or 'none'}); "
                             "pass the path of the T×Y×X array itself")
    return node[arrays[0]], None


def _ome_image(multiscales: Any, path: Path) -> tuple[str, list[dict[str, Any]]]:
    """The first dataset's path (inside the store) and the axes of OME-Zarr ``multiscales`` metadata."""
    bad = f"{path}: OME-Zarr metadata 'multiscales' "
    if not isinstance(multiscales, list) or not isinstance(multiscales[0], dict):
        raise CTCFormatError(bad + f"is {type(multiscales).__name__}, expected a list of images")
    datasets, axes = multiscales[0].get("datasets"), multiscales[0].get("axes", [])
    if not isinstance(datasets, list) or not datasets or not isinstance(datasets[0], dict):
        raise CTCFormatError(bad + "has no 'datasets' list")
    dataset = datasets[0].get("path")
    if not isinstance(dataset, str) or not dataset or any(p in ("", ".", "..") for p in dataset.split("/")) \
            or dataset.startswith("/") or "\\" in dataset:
        raise CTCFormatError(bad + f"names dataset path {dataset!r}; expected a relative path inside the store")
    if not isinstance(axes, list) or not all(isinstance(a, (dict, str)) for a in axes):
        raise CTCFormatError(bad + "has 'axes' that are not a list of names or objects")
    return dataset, [a if isinstance(a, dict) else {"name": a} for a in axes]
