"""Reading and writing the Cell Tracking Challenge (CTC) file format.

Layout of a dataset folder::

    <DATASET>/<SEQ>/tNNN.tif                    raw frames (3 digits, 4 for sequences of 1000+ frames)
    <DATASET>/<SEQ>_GT/TRA/man_trackNNN.tif     tracking markers, every frame, + man_track.txt
    <DATASET>/<SEQ>_GT/SEG/man_segNNN.tif       reference segmentation, sparse (only some frames)
    <DATASET>/<SEQ>_ST/SEG/man_segNNN.tif       silver-truth segmentation (labels not consistent over time)
    <DATASET>/<SEQ>_RES/maskNNN.tif             a result, + res_track.txt

Frames are read lazily, one at a time: opening a sequence only reads each file's TIFF header, so opening a
sequence of 1,764 frames of 1010x1010 pixels costs well under a second. Every problem raises one
:class:`~ctc.errors.CTCFormatError` whose message names the offending path.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Iterable, Iterator, Mapping

import numpy as np

from ctc.errors import CTCError, CTCFormatError
from ctc.fsutil import land_together, make_parents, named_for, remove_made, temp_dir_beside, temp_file_beside
from ctc.guard import RESULT, Output, check_outputs
from ctc.labels import as_labels, label_set
from ctc.lineage import TRACK_FILE_GT, TRACK_FILE_RES, Track
from ctc.rules import check_lineage, errors_only
from ctc.tiff import read_tiff, require_regular_file, tiff_header  # noqa: F401 (part of this API)
from ctc.trackfile import MAX_FRAME, MAX_TRACK_FILE_BYTES, read_track_file, write_track_file  # noqa: F401
from ctc.writer import check, put_bytes, put_tiff

logger = logging.getLogger(__name__)

def frame_name(prefix: str, index: int, ndigits: int) -> str:
    """File name of frame ``index``, e.g. ``frame_name("mask", 7, 3) == "mask007.tif"``."""
    return f"{prefix}{index:0{ndigits}d}.tif"


def default_ndigits(n_frames: int) -> int:
    """Digit count the CTC uses for a sequence of ``n_frames`` frames (3, or 4 from 1000 frames on)."""
    return 4 if n_frames > 1000 else 3


# ----------------------------------------------------------------------------------------------------- TIFF


def write_tiff(path: str | Path, array: np.ndarray, compress: bool = True) -> None:
    """Write a 2-D image. Integer images that are not uint8/uint16 (label images) are stored as uint16.

    Compression is lossless zlib (deflate, TIFF compression 8), which tifffile, ImageJ/Fiji and the CTC tools read.
    """
    path = Path(path)
    array = np.asarray(array)
    if array.ndim != 2:
        raise CTCFormatError(f"{path}: cannot write an image of shape {array.shape}, expected 2-D")
    if array.dtype == bool:
        array = array.astype(np.uint8)
    elif np.issubdtype(array.dtype, np.integer) and array.dtype not in (np.uint8, np.uint16):
        array = to_uint16(array, path)
    put_tiff(path, array, compression="zlib" if compress else None)


def to_uint16(labels: np.ndarray, path: str | Path = "<labels>") -> np.ndarray:
    """Convert an integer label image to uint16, refusing negative values or values above 65535."""
    labels = np.asarray(labels)
    if labels.dtype == np.uint16:
        return labels
    if not np.issubdtype(labels.dtype, np.integer):
        raise CTCFormatError(f"{path}: label image has dtype {labels.dtype}, expected integers")
    if labels.size and (int(labels.min()) < 0 or int(labels.max()) > 65535):
        raise CTCFormatError(f"{path}: labels range {labels.min()}..{labels.max()} does not fit uint16")
    return labels.astype(np.uint16)


# ------------------------------------------------------------------------------------------------ sequences


@dataclass
class Sequence:
    """A folder of numbered 2-D frames ``<prefix>NNN.tif``, read lazily.

    ``indices`` are the frame numbers (contiguous unless opened with ``allow_gaps``), ``files`` the paths,
    ``read(i)`` reads the frame at position ``i`` (0..len-1), iteration yields frames one at a time.
    """

    path: Path
    prefix: str
    indices: list[int]
    files: list[Path]
    ndigits: int
    shape: tuple[int, int]
    dtype: np.dtype
    kind: str = "ctc"  # ctc: <prefix>NNN.tif; folder: any TIFF names in natural order (ctc.frames)
    labels: bool = False  # label images (masks, markers): every frame read passes ctc.labels.as_labels

    def __len__(self) -> int:
        return len(self.files)

    def read(self, i: int) -> np.ndarray:
        """Frame at position ``i`` (not frame number; see :meth:`read_index`)."""
        path = self.files[i]
        array = as_labels(read_tiff(path), path) if self.labels else read_tiff(path)
        if array.shape != self.shape:
            raise CTCFormatError(f"{path}: frame has shape {array.shape}, the sequence has {self.shape}")
        return array

    def read_index(self, index: int) -> np.ndarray:
        """Frame with frame number ``index``."""
        try:
            position = self.indices.index(index)
        except ValueError:
            raise CTCFormatError(f"{self.path}: no frame {frame_name(self.prefix, index, self.ndigits)}") from None
        return self.read(position)  # its own errors (a CTCFormatError is a ValueError too) pass unchanged

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(len(self)):
            yield self.read(i)


def parse_frame_name(name: str, prefix: str) -> int | None:
    """The frame number of ``<prefix>NNN.tif`` (3 or 4 ASCII digits, ``.tif`` or ``.tiff``), None for a name of
    another kind. A name that looks like a frame but is not one (``t98.tif``, ``t٠٠٤.tif``, fullwidth digits,
    ``t00001.tif``) raises :class:`CTCFormatError`: a frame is never silently skipped."""
    match = re.fullmatch(rf"{re.escape(prefix)}([0-9]{{3,4}})\.tiff?", name, re.ASCII)
    if match is not None:
        return int(match.group(1))
    stem, _, ext = name[len(prefix):].rpartition(".") if name.startswith(prefix) else ("", "", "")
    if ext.lower() in ("tif", "tiff") and stem[:1].isnumeric():
        raise CTCFormatError(f"{name}: not a frame name {prefix}NNN.tif (3 or 4 ASCII digits 0-9); rename it")
    return None


def is_sequence_name(name: str) -> bool:
    """A sequence folder name: ASCII digits only (``01``, ``02``)."""
    return re.fullmatch(r"[0-9]+", name, re.ASCII) is not None


def discover_frames(folder: str | Path, prefix: str) -> tuple[list[int], list[Path], int]:
    """Frame numbers, files (sorted by number) and digit count of ``<prefix>NNN.tif`` in ``folder``."""
    folder = Path(folder)
    if not folder.exists():
        raise CTCFormatError(f"{folder}: folder not found")
    if not folder.is_dir():
        raise CTCFormatError(f"{folder}: not a folder")
    found: dict[int, Path] = {}
    widths: set[int] = set()
    for entry in os.scandir(folder):
        try:
            index = parse_frame_name(entry.name, prefix)
        except CTCFormatError as err:
            raise CTCFormatError(f"{folder}/{err}") from None
        if index is None:
            continue
        if index in found:
            raise CTCFormatError(f"{folder}: frame {index} exists twice ({found[index].name}, {entry.name})")
        require_regular_file(Path(entry.path))
        found[index] = Path(entry.path)
        widths.add(len(entry.name) - len(prefix) - len(Path(entry.name).suffix))
    if not found:
        raise CTCFormatError(f"{folder}: no {prefix}NNN.tif files")
    indices = sorted(found)
    return indices, [found[i] for i in indices], max(widths)


def open_sequence(path: str | Path, prefix: str = "t", allow_gaps: bool = False, labels: bool = False) -> Sequence:
    """Open the frames ``<prefix>NNN.tif`` of a folder, checking only headers (no pixel data is decoded).

    Checks: the folder exists and holds such files, frame numbers have no gaps (unless ``allow_gaps``, used for
    the sparse ``GT/SEG``), each file is a readable, untruncated single 2-D image, and all share one shape.
    """
    folder = Path(path)
    indices, files, ndigits = discover_frames(folder, prefix)
    if not allow_gaps:
        missing = sorted(set(range(indices[0], indices[-1] + 1)) - set(indices))
        if missing:
            names = ", ".join(frame_name(prefix, m, ndigits) for m in missing[:5])
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise CTCFormatError(f"{folder}: frame numbers have gaps, missing {names}{more}")
    shape, dtype = tiff_header(files[0])
    for file in files[1:]:
        other, _ = tiff_header(file)
        if other != shape:
            raise CTCFormatError(f"{file}: frame has shape {other}, but {files[0].name} has {shape}")
    logger.debug("opened %s: %d frames %s of %s", folder, len(files), shape, dtype)
    return Sequence(folder, prefix, indices, files, ndigits, (int(shape[0]), int(shape[1])), dtype, labels=labels)


# ----------------------------------------------------------------------------------------- dataset helpers


def find_sequences(dataset_dir: str | Path) -> list[str]:
    """Names of the sequences of a dataset (sub-folders named by digits only, e.g. ``["01", "02"]``)."""
    folder = Path(dataset_dir)
    if not folder.is_dir():
        raise CTCFormatError(f"{folder}: dataset folder not found")
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and is_sequence_name(p.name))
    if not names:
        raise CTCFormatError(f"{folder}: no sequence folders (01, 02, ...)")
    return names


@dataclass(frozen=True)
class SequencePaths:
    """The CTC folders belonging to sequence ``name`` of dataset ``dataset``."""

    dataset: Path
    name: str

    @property
    def raw(self) -> Path:
        return self.dataset / self.name

    @property
    def gt(self) -> Path:
        return self.dataset / f"{self.name}_GT"

    @property
    def gt_tra(self) -> Path:
        return self.gt / "TRA"

    @property
    def gt_seg(self) -> Path:
        return self.gt / "SEG"

    @property
    def st_seg(self) -> Path:
        return self.dataset / f"{self.name}_ST" / "SEG"

    @property
    def res(self) -> Path:
        return self.dataset / f"{self.name}_RES"


def open_tracking_gt(tra_dir: str | Path) -> tuple[Sequence, list[Track]]:
    """Open ``<SEQ>_GT/TRA``: the marker frames ``man_trackNNN.tif`` and the tracks of ``man_track.txt``."""
    tra_dir = Path(tra_dir)
    return open_sequence(tra_dir, "man_track", labels=True), read_track_file(tra_dir / TRACK_FILE_GT)


def open_segmentation(seg_dir: str | Path) -> Sequence:
    """Open ``<SEQ>_GT/SEG`` or ``<SEQ>_ST/SEG`` (``man_segNNN.tif``; gaps allowed, GT/SEG is sparse)."""
    return open_sequence(seg_dir, "man_seg", allow_gaps=True, labels=True)


def open_result(res_dir: str | Path) -> tuple[Sequence, list[Track]]:
    """Open a result folder: ``maskNNN.tif`` frames and ``res_track.txt``."""
    res_dir = Path(res_dir)
    return open_sequence(res_dir, "mask", labels=True), read_track_file(res_dir / TRACK_FILE_RES)


# ------------------------------------------------------------------------------------------ result writer


def check_frame_numbers(target: str | Path, first: int, last: int) -> None:
    """Refuse frame numbers outside 0..:data:`MAX_FRAME` for a result ``target``: the CTC names frames with 3 or
    4 digits (``mask9999.tif`` is the last), and ``embedtrack validate`` rejects any other name."""
    if first < 0:
        raise CTCError(f"{target}: frame number {first} is negative; frame numbers start at 0")
    if last > MAX_FRAME:
        raise CTCError(f"{target}: frame number {last} is above {MAX_FRAME}; CTC frame names have 3 or 4 digits "
                       f"(mask000.tif to mask{MAX_FRAME}.tif); nothing was written")


class ResultWriter:
    """Write a CTC result folder atomically: ``maskNNN.tif`` frames, then ``res_track.txt``.

    Everything goes into a temporary folder beside ``target`` (``.<name>.tmp-<pid>-XXXX``) that is renamed into
    place by :meth:`finish`, together with the files of ``extra`` (e.g. the settings file ``<RES>.json``): all
    land or none does. The rule of the one way out (:func:`ctc.writer.check`) is applied at construction: ``target`` and ``extra``
    are none of ``inputs``, and an existing one is replaced only with ``overwrite`` and when it is of its kind;
    leftovers of killed runs are removed. On an exception inside the ``with`` block, or leaving it without
    :meth:`finish`, the temporary folder and the parent folders it created are removed and ``target`` is
    untouched.

    Empty frames (no cell at all) are written as they are - an all-zero mask - and a warning is logged; they are
    listed in :attr:`empty_frames`. py-ctcmetrics accepts them, but some versions of the CTC evaluation tools
    stop on an empty result frame, so :func:`ctc.rules.check_lineage` reports them as warnings.
    """

    def __init__(self, target: str | Path, ndigits: int, overwrite: bool = False,
                 inputs: Iterable[str | Path] = (), extra: Iterable[Output] = ()) -> None:
        self.target = Path(target)
        self.ndigits = ndigits
        self.overwrite = overwrite
        self.inputs = [Path(p) for p in inputs]
        self.outputs = [Output(self.target, RESULT), *extra]
        check(self.outputs, self.inputs, overwrite)  # never an input, only our own replaced; leftovers removed
        self._tmp: Path | None = None
        self._made: list[Path] = []
        self._labels: dict[int, np.ndarray] = {}
        self._shape: tuple[int, ...] | None = None
        self._done = False
        self.empty_frames: list[int] = []

    @property
    def temp_dir(self) -> Path:
        """The temporary folder (created on first use)."""
        if self._done:
            raise CTCError(f"{self.target}: result already finished")
        if self._tmp is None:
            self._made = make_parents(self.target)
            self._tmp = temp_dir_beside(self.target)
        return self._tmp

    def __enter__(self) -> ResultWriter:
        _ = self.temp_dir
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if not self._done:
            self.abort()
            if exc_type is None:
                raise CTCError(f"{self.target}: result writer closed without finish(); nothing was written")

    def write_mask(self, index: int, labels: np.ndarray) -> None:
        """Write frame ``index`` as ``mask<index>.tif`` (uint16)."""
        check_frame_numbers(self.target, index, index)
        name = frame_name("mask", index, self.ndigits)
        labels = to_uint16(labels, self.target / name)
        if labels.ndim != 2:
            raise CTCFormatError(f"{self.target / name}: mask has shape {labels.shape}, expected 2-D")
        if self._shape is None:
            self._shape = labels.shape
        elif labels.shape != self._shape:
            raise CTCFormatError(f"{self.target / name}: mask has shape {labels.shape}, earlier ones {self._shape}")
        if index in self._labels:
            raise CTCError(f"{self.target / name}: frame {index} written twice")
        present = label_set(labels)
        if present.size == 0:
            logger.warning("%s: frame %d has no cells; writing an empty mask", self.target, index)
            self.empty_frames.append(index)
        self._labels[index] = present
        write_tiff(self.temp_dir / name, labels)

    def _check_complete(self, tracks: list[Track], validate: bool) -> None:
        if not self._labels:
            raise CTCError(f"{self.target}: no mask was written")
        if len(self.empty_frames) == len(self._labels):
            source = self.inputs[0] if self.inputs else self.target
            raise CTCError(f"no cells were found in any frame of {source} (is this the right model?); "
                           f"{self.target} was not written")
        written = sorted(self._labels)
        missing = sorted(set(range(written[0], written[-1] + 1)) - set(written))
        if missing:
            raise CTCError(f"{self.target}: masks for frames {missing[:5]} were not written")
        if validate:
            problems = errors_only(check_lineage(self._labels, tracks))
            if problems:
                shown = "; ".join(str(p) for p in problems[:5])
                more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
                raise CTCError(f"{self.target}: result violates the CTC rules: {shown}{more}")

    def finish(self, tracks: Iterable[Track], validate: bool = True, extra: Mapping[Path, bytes] | None = None) -> Path:
        """Write ``res_track.txt``, check the lineage against the masks written (if ``validate``), and move the
        folder into place together with the ``extra`` files (path -> content; the paths of the constructor's
        ``extra``). Any CTC rule violation raises :class:`CTCError` and leaves every target untouched."""
        tracks = list(tracks)
        tmp = self.temp_dir
        files: list[tuple[Path, Path]] = []
        try:
            self._check_complete(tracks, validate)
            write_track_file(tmp / TRACK_FILE_RES, tracks)
            for path, content in (extra or {}).items():
                files.append((_write_temp(Path(path), content), Path(path)))
            check_outputs(self.outputs, self.inputs, self.overwrite)  # again: something may have appeared
            land_together([(tmp, self.target), *files])
            self._tmp = None
        except BaseException:
            for temp, _ in files:
                temp.unlink(missing_ok=True)
            self.abort()
            raise
        self._done = True
        logger.info("wrote %s (%d frames, %d tracks)", self.target, len(self._labels), len(tracks))
        return self.target

    def abort(self) -> None:
        """Remove the temporary folder and the parent folders created for it; ``target`` is left as it was."""
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
            remove_made(self._made)


def _write_temp(target: Path, content: bytes) -> Path:
    """``content`` in a new temporary file beside ``target``; an error names ``target``."""
    tmp = temp_file_beside(target)
    try:
        put_bytes(tmp, content)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise named_for(err, target) from err
    return tmp
