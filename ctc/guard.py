"""What an output folder may be, and what may be replaced: the one rule every writer applies.

* An output never is, contains, or lies inside one of its inputs (``run DATA/01 --output DATA`` or
  ``--output .`` would otherwise replace the raw frames and the ground truth).
* An existing folder is replaced (``--overwrite``) only when it is empty or holds nothing but what the
  writer itself writes: ``maskNNN.tif`` + ``res_track.txt`` for a result, the sequence folders and
  ``synth.json`` for a synthetic dataset, ``config.json``/``weights.pt``/``checkpoint.pt``/``train_log.jsonl``
  for a model. Anything else is refused with :class:`~ctc.errors.CTCUnsafeOutputError`.
* Temporary folders ``.<name>.tmp-<pid>-XXXXXXXX`` left beside an output by a killed run (SIGKILL, power
  loss) are removed when the next run on that output starts; a left ``.<name>.old-…`` folder holding the
  previous result is put back when the output itself is missing (the kill came between the two renames).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from pathlib import Path
from typing import Callable, Iterable

from ctc.errors import CTCUnsafeOutputError

logger = logging.getLogger(__name__)

RESULT_ENTRY = re.compile(r"mask\d{3,4}\.tif|res_track\.txt")
DATASET_ENTRY = re.compile(r"\d+|\d+_GT|\d+_ST|synth\.json")
MODEL_FILES = ("config.json", "weights.pt", "checkpoint.pt", "train_log.jsonl")
MODEL_ENTRY = re.compile("|".join(re.escape(n) for n in MODEL_FILES)
                         + r"|\.(config\.json|weights\.pt|checkpoint\.pt)\..*")  # + their temporary files


def _entries(folder: Path) -> list[str]:
    return sorted(entry.name for entry in os.scandir(folder))


def looks_like_result(folder: Path) -> bool:
    """Only ``maskNNN.tif`` files and ``res_track.txt`` (or nothing)."""
    return all(RESULT_ENTRY.fullmatch(name) for name in _entries(folder))


def looks_like_synth_dataset(folder: Path) -> bool:
    """What ``embedtrack synth`` writes: ``synth.json`` and sequence folders ``NN``, ``NN_GT``, ``NN_ST``."""
    names = _entries(folder)
    return not names or ("synth.json" in names and all(DATASET_ENTRY.fullmatch(name) for name in names))


def looks_like_ctc_dataset(folder: Path) -> bool:
    """What a CTC dataset zip unpacks to: only the folders ``NN``, ``NN_GT``, ``NN_ST`` (no results, no models)."""
    return all(DATASET_ENTRY.fullmatch(name) and name != "synth.json" for name in _entries(folder))


def looks_like_model(folder: Path) -> bool:
    """Only the files ``embedtrack train`` writes into a model folder (or nothing)."""
    return all(MODEL_ENTRY.fullmatch(name) for name in _entries(folder))


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def check_not_input(target: Path, inputs: Iterable[str | Path]) -> None:
    """Refuse an output that is, contains or lies inside one of ``inputs``."""
    out = _real(target)
    for given in inputs:
        source = _real(Path(given))
        if out == source:
            how = "is"
        elif out in source.parents:
            how = "contains"
        elif source in out.parents:
            how = "lies inside"
        else:
            continue
        raise CTCUnsafeOutputError(f"{target}: the output {how} the input {given}; choose another output folder "
                                   "(nothing was written or removed)")


def check_replaceable(target: Path, looks_ours: Callable[[Path], bool], what: str) -> None:
    """Refuse to replace ``target`` unless it is a folder that is empty or ``looks_ours``."""
    if not target.exists() and not target.is_symlink():
        return
    if target.is_symlink() or not target.is_dir():
        raise CTCUnsafeOutputError(f"{target}: exists and is not a folder; not replaced")
    if not looks_ours(target):
        names = _entries(target)
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        raise CTCUnsafeOutputError(f"{target}: does not look like a {what} (it holds {shown}); --overwrite only "
                                   f"replaces a {what}. Remove it yourself or choose another output")


def check_output(target: str | Path, inputs: Iterable[str | Path] = (), replace: bool = False,
                 looks_ours: Callable[[Path], bool] = looks_like_result, what: str = "result folder") -> None:
    """The whole rule: ``target`` is none of ``inputs``, and when ``replace`` it is ours to replace."""
    target = Path(target)
    check_not_input(target, inputs)
    if replace:
        check_replaceable(target, looks_ours, what)


def _temp_pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"\.{re.escape(name)}\.(tmp|old)-(?:(\d+)-)?[A-Za-z0-9_]{{8}}")


def _alive(pid: int) -> bool:
    if pid == os.getpid():  # our own are created after this cleanup: one with our pid is a dead run's (Docker)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def remove_stale_temp_dirs(target: str | Path) -> list[Path]:
    """Remove the temporary folders killed runs left beside ``target``; returns what was removed or restored."""
    target = Path(target)
    parent, pattern = target.parent, _temp_pattern(target.name)
    if not parent.is_dir():
        return []
    handled = []
    for entry in sorted(parent.iterdir()):
        match = pattern.fullmatch(entry.name)
        if match is None or not entry.is_dir() or entry.is_symlink():
            continue
        if match.group(2) is not None and _alive(int(match.group(2))):
            continue
        previous = entry / "previous"
        if match.group(1) == "old" and previous.is_dir() and not target.exists():
            os.replace(previous, target)
            logger.warning("%s: put back the previous result an interrupted run had moved to %s", target, entry)
        else:
            logger.warning("%s: removing %s, left by an interrupted earlier run", target, entry.name)
        shutil.rmtree(entry, ignore_errors=True)
        handled.append(entry)
    return handled
