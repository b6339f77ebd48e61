"""The lock of a model folder that ``embedtrack train`` writes: ``.train.lock`` holding the owner's process id.

Two runs into the same ``--out`` must not both go on. The lock file is locked with ``flock`` while its owner
runs, so that of two runs starting at the same moment exactly one gets it (the kernel releases it when the owner
dies, even by SIGKILL); the process id written in it names the owner in the message of the one refused. A lock
file whose process is gone is taken over; one naming a live process is respected even when it is not locked
(written by an older version).
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path
from typing import Iterator

from ctc.guard import TRAIN_LOCK, pid_alive
from embedtrack.errors import EmbedTrackError

try:
    import fcntl
except ImportError:  # no flock: exclusive creation only
    fcntl = None  # type: ignore[assignment]


def lock_owner(lock: Path) -> int | None:
    """The live process named in ``lock``, or None (no lock, or its owner is gone)."""
    try:
        text = lock.read_text(encoding="ascii", errors="replace").strip()
    except FileNotFoundError:
        return None
    pid = int(text) if re.fullmatch(r"[0-9]{1,9}", text, re.ASCII) else None
    return pid if pid is not None and pid_alive(pid) else None


def _refused(out_dir: Path, owner: int | None) -> EmbedTrackError:
    who = f"process {owner}" if owner is not None else "another run"
    return EmbedTrackError(f"{out_dir}: {who} is training into it ({TRAIN_LOCK}); wait for it to end or choose "
                           "another --out")


def check_unlocked(out_dir: Path) -> None:
    """Refuse ``out_dir`` when a live process holds its lock (checked before any work)."""
    owner = lock_owner(out_dir / TRAIN_LOCK)
    if owner is not None:
        raise _refused(out_dir, owner)


def _open_locked(lock: Path, out_dir: Path) -> int:
    """A descriptor of ``lock`` that this process holds the ``flock`` of (the file at ``lock`` now, not one its
    previous owner removed meanwhile)."""
    while True:
        if fcntl is None:
            try:
                return os.open(lock, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            except FileExistsError:
                raise _refused(out_dir, lock_owner(lock)) from None
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _refused(out_dir, lock_owner(lock)) from None
        try:
            if os.path.samestat(os.fstat(fd), os.stat(lock)):
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)  # the owner removed it between our open and our flock: try the new file


@contextlib.contextmanager
def locked(out_dir: Path) -> Iterator[None]:
    """Hold ``out_dir/.train.lock`` (our process id) for the block; a lock whose owner is gone is taken over."""
    lock = out_dir / TRAIN_LOCK
    check_unlocked(out_dir)
    fd = _open_locked(lock, out_dir)
    try:
        owner = lock_owner(lock)
        if owner is not None:  # a live process's lock file without flock
            raise _refused(out_dir, owner)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)  # still holding it: a run waiting on this file tries the next one
    finally:
        os.close(fd)
