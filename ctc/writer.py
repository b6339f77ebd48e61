"""The one way out: every file or folder embedtrack writes goes through this module.

A command, the Python API and the napari plugin name each output as a :class:`~ctc.guard.Output` (a path and
the :class:`~ctc.guard.Kind` of thing written there) and write it with one of

* :func:`write_file`: one file, from bytes, text or a function writing to a binary handle or to a path;
* :func:`staged_folder`: a folder filled in a temporary folder beside it (:class:`Staging`), then renamed into
  place.

Both apply :func:`ctc.guard.check_outputs` first (never an input, never a protected folder, an existing output
replaced only with ``overwrite`` and only when it is of its kind, checked by content: a raw frame, a
``man_track.txt`` or a run's settings file is never replaced by a CSV table), remove what killed runs left
beside the output, write under a temporary name (:mod:`ctc.fsutil`), check the rule again just before the
rename, and rename into place: nothing is half-written, and on an error the target is as it was. A result
folder with its settings file is written by :class:`ctc.io.ResultWriter`, which applies the same rule.

The encoders at the end (:func:`put_bytes`, :func:`put_tiff`, :func:`put_video`, :func:`copy_into`,
:func:`append_line`) are the only code that creates file content; product code calls them on paths inside a
:class:`Staging` folder or the temporary file of :func:`write_file`, or on a file it owns for the run (the
training log of a model folder the run holds locked). ``tests/test_one_way_out.py`` fails when a file is written any other way.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Union

import numpy as np

from ctc.fsutil import atomic_path, move_into_place, parents_made, temp_dir_beside
from ctc.guard import Kind, Output, check_outputs, remove_stale_temps

Content = Union[bytes, str, Callable[[BinaryIO], object]]


def check(outputs: Iterable[Output], inputs: Iterable[str | Path] = (), overwrite: bool = False) -> None:
    """The rule of :func:`ctc.guard.check_outputs` for all outputs of a command, and the leftovers of killed
    runs beside them removed; call it before any expensive work."""
    outs = list(outputs)
    check_outputs(outs, inputs, overwrite)
    for output in outs:
        remove_stale_temps(output.path)


def _fill(handle: BinaryIO, content: Content) -> None:
    if isinstance(content, bytes):
        handle.write(content)
    elif isinstance(content, str):
        handle.write(content.encode("utf-8"))
    else:
        content(handle)


def write_file(target: str | Path, content: Content, kind: Kind, *, inputs: Iterable[str | Path] = (),
               overwrite: bool = False) -> Path:
    """Write one file of ``kind`` at ``target`` (see the module doc): ``content`` is bytes, text (UTF-8) or a
    function writing to a binary handle."""
    return write_path(target, lambda tmp: put_bytes(tmp, content), kind, inputs=inputs, overwrite=overwrite)


def write_path(target: str | Path, save: Callable[[Path], object], kind: Kind, *,
               inputs: Iterable[str | Path] = (), overwrite: bool = False) -> Path:
    """:func:`write_file` for writers that need a path (Pillow, imageio): ``save(tmp)`` writes a temporary file
    with ``target``'s suffix, renamed to ``target`` when complete."""
    output = Output(Path(target), kind)
    sources = list(inputs)
    check([output], sources, overwrite)
    with atomic_path(output.path) as tmp:
        save(tmp)
        check_outputs([output], sources, overwrite)  # again: something may have appeared meanwhile
    return output.path


class Staging:
    """The temporary folder :func:`staged_folder` fills; files are named relative to it, so nothing lands
    outside."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def file(self, name: str, content: Content) -> Path:
        """Write the file ``name`` (bytes, text or a function writing to a binary handle)."""
        return put_bytes(self.path / name, content)

    def tiff(self, name: str, array: np.ndarray, **options: Any) -> Path:
        """Write the TIFF ``name`` (``options`` go to ``tifffile.imwrite``)."""
        return put_tiff(self.path / name, array, **options)


@contextlib.contextmanager
def staged_folder(target: str | Path, kind: Kind, *, inputs: Iterable[str | Path] = (),
                  overwrite: bool = False) -> Iterator[Staging]:
    """A :class:`Staging` folder for the block; when the block ends well it replaces ``target`` (checked by
    :func:`check` before and again just before the rename), else it is removed with the parent folders made
    for it and ``target`` is untouched."""
    output = Output(Path(target), kind)
    sources = list(inputs)
    check([output], sources, overwrite)
    with parents_made(output.path):
        tmp = temp_dir_beside(output.path)
        try:
            yield Staging(tmp)
            check_outputs([output], sources, overwrite)  # again, just before the rename
            move_into_place(tmp, output.path, overwrite=True)  # what is there now passed the rule just above
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------- encoders (see module doc)


def put_bytes(path: Path, content: Content) -> Path:
    """Write ``content`` to the file ``path`` (a new file, or the empty temporary file of :func:`write_file`)."""
    with open(path, "wb") as handle:
        _fill(handle, content)
    return path


def put_tiff(path: Path, array: np.ndarray, **options: Any) -> Path:
    """Write the TIFF ``path`` (``options`` go to ``tifffile.imwrite``)."""
    import tifffile

    tifffile.imwrite(path, array, **options)
    return path


def put_video(path: Path, frames: Iterable[np.ndarray], fps: float) -> Path:
    """Write the RGB ``frames`` as an H.264 MP4 video ``path`` (needs imageio with imageio-ffmpeg)."""
    import imageio.v2 as imageio

    video = imageio.get_writer(str(path), format="FFMPEG", fps=fps, codec="libx264", macro_block_size=2)
    try:
        for rgb in frames:
            video.append_data(rgb)
    finally:
        video.close()
    return path


def copy_into(source: Path, path: Path) -> Path:
    """Copy the regular file ``source`` to the new file ``path``."""
    with open(source, "rb") as src, open(path, "xb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def append_line(path: Path, line: str) -> None:
    """Append one line of text to ``path`` (created if missing)."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
