"""Atomic writing: a file or folder is built under a temporary name beside its target and renamed into place
only when complete, so an interruption never leaves a half-written target, and an error leaves it as it was.

* :func:`atomic_path` / :func:`write_atomic`: one file (any writer that takes a path, or a binary handle).
* :func:`temp_dir_beside` + :func:`move_into_place`: a folder filled step by step, then renamed into place.

Temporary names start with a dot and live in the target's folder (one file system, so the rename is atomic).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from ctc.errors import CTCResultExistsError


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def temp_dir_beside(target: Path, tag: str = "tmp") -> Path:
    """A new hidden folder ``.<name>.<tag>-<pid>-XXXXXXXX`` beside ``target``, with the permissions a plain
    ``mkdir`` would give (``mkdtemp`` makes it private, which the folder would keep once renamed into place).
    The process id lets :func:`ctc.guard.remove_stale_temp_dirs` tell a dead run's leftovers from a live one's."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.{tag}-{os.getpid()}-", dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """A new temporary path beside ``target`` (same suffix) for the caller to write; on leaving the block it
    replaces ``target``, on an exception it is removed and ``target`` is untouched. The file gets the
    permissions a plain ``open`` would give."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def write_atomic(target: str | Path, write: Callable[[BinaryIO], object]) -> Path:
    """Call ``write(handle)`` on a binary handle to a temporary file, then rename it to ``target``."""
    target = Path(target)
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        write(handle)
    return target


def move_into_place(source: Path, target: Path, overwrite: bool = False) -> None:
    """Rename the complete folder ``source`` to ``target``. An existing ``target`` is replaced only with
    ``overwrite`` (else :class:`CTCResultExistsError`); it is moved aside first and removed only after
    ``source`` took its place."""
    old: Path | None = None
    if target.exists():
        if not overwrite:
            raise CTCResultExistsError(f"{target}: appeared while writing; not replaced")
        old = temp_dir_beside(target, "old")
        os.replace(target, old / "previous")
    try:
        os.replace(source, target)
    except BaseException:
        if old is not None:
            os.replace(old / "previous", target)
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
