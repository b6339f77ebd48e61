"""Atomic writing: a file or folder is built under a temporary name beside its target and renamed into place
only when complete, so an interruption never leaves a half-written target, and an error leaves it as it was.

* :func:`atomic_path` / :func:`write_atomic`: one file (any writer that takes a path, or a binary handle).
* :func:`temp_dir_beside` + :func:`move_into_place`: a folder filled step by step, then renamed into place.
* :func:`land_together`: several complete temporary files or folders renamed into place all or none (a result
  folder and its settings file).
* :func:`make_parents` / :func:`remove_made`: parent folders created for an output, removed again on failure.

Temporary names are ``.<name>.<tag>-<pid>-XXXXXXXX`` (``tag`` ``tmp`` or ``old``; a file keeps its suffix) in the
target's folder (one file system, so the rename is atomic); :func:`ctc.guard.remove_stale_temps` recognises
them. Errors name the target, never a temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, Sequence

from ctc.errors import CTCResultExistsError, CTCUnsafeOutputError

logger = logging.getLogger(__name__)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def temp_prefix(target: Path, tag: str = "tmp") -> str:
    """``.<name>.<tag>-<pid>-``: the start of every temporary name beside ``target``."""
    return f".{target.name}.{tag}-{os.getpid()}-"


def temp_dir_beside(target: Path, tag: str = "tmp") -> Path:
    """A new hidden folder ``.<name>.<tag>-<pid>-XXXXXXXX`` beside ``target``, with the permissions a plain
    ``mkdir`` would give (``mkdtemp`` makes it private, which the folder would keep once renamed into place).
    The process id lets :func:`ctc.guard.remove_stale_temps` tell a dead run's leftovers from a live one's."""
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(target, tag), dir=target.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def temp_file_beside(target: Path) -> Path:
    """A new empty file ``.<name>.tmp-<pid>-XXXXXXXX<suffix>`` beside ``target`` with plain permissions."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=temp_prefix(target), suffix=target.suffix)
    os.close(fd)
    os.chmod(name, 0o666 & ~_umask())
    return Path(name)


def named_for(err: OSError, target: Path) -> OSError:
    """``err`` naming ``target`` instead of a temporary file (the user never sees temporary names)."""
    if err.errno is None:
        return err
    return type(err)(err.errno, err.strerror, str(target))


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """A new temporary path beside ``target`` (same suffix) for the caller to write; on leaving the block it
    replaces ``target``, on an exception it is removed and ``target`` is untouched. The file gets the
    permissions a plain ``open`` would give."""
    target = Path(target)
    with parents_made(target):
        tmp = temp_file_beside(target)
        try:
            try:
                yield tmp
                os.replace(tmp, target)
            except OSError as err:
                raise named_for(err, target) from err
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
    if (target.exists() or target.is_symlink()) and not overwrite:
        raise CTCResultExistsError(f"{target}: appeared while writing; not replaced")
    land_together([(source, target)])


def land_together(moves: Sequence[tuple[Path, Path]]) -> None:
    """Rename each complete ``source`` to its ``target``, all or none. Existing targets are moved aside first
    (``.<name>.old-…/previous``) and removed only when every source is in place; when a rename fails, the
    sources already moved go back to their temporary names and the previous targets are put back."""
    asides: list[tuple[Path, Path]] = []
    placed: list[tuple[Path, Path]] = []
    done = False
    try:
        for _, target in moves:
            if target.exists() or target.is_symlink():
                asides.append((target, move_aside(target)))
        for source, target in moves:
            try:
                os.replace(source, target)
            except OSError as err:
                raise named_for(err, target) from err
            placed.append((source, target))
        done = True
    finally:
        if not done:
            for source, target in reversed(placed):
                os.replace(target, source)
            for target, old in asides:
                if (old / "previous").exists() or (old / "previous").is_symlink():
                    os.replace(old / "previous", target)
        for _, old in asides:
            _remove_aside(old, done)


def move_aside(target: Path) -> Path:
    """Move ``target`` to ``.<name>.old-…/previous`` beside it and return that new folder. When ``target`` cannot
    be moved (a read-only folder), the new folder is removed again and the error says that ``target`` is
    read-only and was left as it was."""
    old = temp_dir_beside(target, "old")
    try:
        os.replace(target, old / "previous")
    except OSError as err:
        old.rmdir()
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise CTCUnsafeOutputError(read_only_message(target)) from err
        raise named_for(err, target) from err
    return old


def read_only_message(target: Path) -> str:
    """The one line for an existing output that cannot be replaced because it is read-only."""
    return (f"{target}: is read-only, so it cannot be replaced; it was left as it was and nothing was written. "
            "Make it writable (chmod -R u+w) or choose another output")


def _remove_aside(old: Path, done: bool) -> None:
    """Remove a folder of :func:`land_together`'s moved-aside target: all of it once done, else only if empty."""
    if done:
        shutil.rmtree(old, ignore_errors=True)
        if old.exists():
            logger.warning("%s: could not remove this previous version set aside; the next run on the same output "
                           "tries again", old)
    else:
        with contextlib.suppress(OSError):
            old.rmdir()


@contextlib.contextmanager
def set_aside(target: Path) -> Iterator[None]:
    """Move an existing ``target`` aside (``.<name>.old-…/previous``) for the block: it is removed when the block
    ends well, and put back in place of whatever the block wrote at ``target`` when it fails."""
    if not target.exists():
        yield
        return
    old = move_aside(target)
    done = False
    try:
        yield
        done = True
    finally:
        if not done:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(old / "previous", target)
        _remove_aside(old, done)


def make_parents(path: Path) -> list[Path]:
    """Create the missing parent folders of ``path``; returns those created, outermost first."""
    missing = [p for p in reversed(path.parents) if not p.exists()]
    for folder in missing:
        folder.mkdir(exist_ok=True)
    return missing


@contextlib.contextmanager
def parents_made(path: Path) -> Iterator[list[Path]]:
    """:func:`make_parents` for the block; on an exception the folders it created are removed when empty."""
    made = make_parents(path)
    try:
        yield made
    except BaseException:
        remove_made(made)
        raise


def remove_made(folders: Sequence[Path]) -> None:
    """Remove folders :func:`make_parents` created, innermost first, as long as they are empty."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:
            return
