"""The one rule for every path a command writes: never an input, never a user's file replaced unasked.

Every output is an :class:`Output`: a path and the :class:`Kind` of thing written there (a result folder, a
settings file, a GIF, a model folder, ...). :func:`check_outputs` applies the rule to all outputs of a command
at once, before any expensive work:

* an output never is, contains, or lies inside one of the command's inputs, nor inside a protected folder (the
  installed package's bundled models, see :func:`protect`), nor another output of the same command;
* an existing output is replaced only with ``overwrite``, and only when it is of its kind, checked by type and
  content, not only by name: a result folder holds nothing but regular files ``maskNNN.tif`` and
  ``res_track.txt``, a settings file is a JSON object with the keys ``run`` writes, a GIF starts with the GIF
  signature. A folder named ``mask000.tif``, a FIFO, a symbolic link or a raw frame is never replaced.

Temporary files and folders ``.<name>.tmp-<pid>-XXXXXXXX`` left beside an output by a killed run (SIGKILL,
power loss) are removed when the next run on that output starts (:func:`remove_stale_temps`); a left
``.<name>.old-…`` holding the previous output is put back when the output itself is missing (the kill came
between two renames). Names are matched with ASCII digits only.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Mapping, Union

from ctc.errors import CTCResultExistsError, CTCUnsafeOutputError
from ctc.fsutil import read_only_message

logger = logging.getLogger(__name__)

FILE = "file"
Layout = Mapping[str, Union[str, "Layout"]]  # ASCII regular expression of a name -> FILE or a folder's layout

#: Folders no command writes into or replaces, with what they are (see :func:`protect`).
PROTECTED: dict[Path, str] = {}
#: The most bytes of a JSON file read to decide whether it is one of ours.
MAX_OWN_JSON_BYTES = 64 * 2**20


def protect(folder: str | Path, what: str) -> None:
    """Add ``folder`` to the folders every output is checked against (as if it were an input of every command)."""
    PROTECTED[Path(folder)] = what


def temp_name_pattern(name: str, suffix: str = "") -> str:
    """Regular expression of the temporary names beside ``name`` (see :mod:`ctc.fsutil`); group 1 is the tag,
    group 2 the process id."""
    tail = f"(?:{re.escape(suffix)})?" if suffix else ""
    return rf"\.{re.escape(name)}\.(tmp|old)-(?:([0-9]+)-)?[A-Za-z0-9_]{{8}}{tail}"


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as entries:
        return sorted(entries, key=lambda e: e.name)


def layout_problem(folder: Path, layout: Layout, prefix: str = "") -> str | None:
    """Why ``folder`` does not hold only what ``layout`` allows (regular files, folders laid out in turn), or None."""
    for entry in _entries(folder):
        name = prefix + entry.name
        spec = next((s for pattern, s in layout.items() if re.fullmatch(pattern, entry.name, re.ASCII)), None)
        if spec is None:
            return f"it holds {name}"
        if spec == FILE:
            if not entry.is_file(follow_symlinks=False):
                return f"{name} is not a regular file"
        elif not entry.is_dir(follow_symlinks=False):
            return f"{name} is not a folder"
        else:
            inner = layout_problem(Path(entry.path), spec, name + "/")  # type: ignore[arg-type]
            if inner is not None:
                return inner
    return None


def _head(path: Path, size: int) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(size)


def json_with(*keys: str) -> Callable[[Path], bool]:
    """A content check: a JSON object holding ``keys`` (what a command of ours writes)."""

    def accepts(path: Path) -> bool:
        if path.stat().st_size > MAX_OWN_JSON_BYTES:
            return False
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except (ValueError, RecursionError):
            return False
        return isinstance(data, dict) and all(key in data for key in keys)

    return accepts


def signature(*starts: bytes, offset: int = 0) -> Callable[[Path], bool]:
    """A content check: the file's bytes from ``offset`` start with one of ``starts``."""
    return lambda path: any(_head(path, offset + len(s))[offset:] == s for s in starts)


@dataclass(frozen=True)
class Kind:
    """What a command writes at a path: a folder with a :data:`Layout`, or a file whose content it recognises."""

    what: str
    layout: Layout | None = None
    required: tuple[str, ...] = ()  # entries a non-empty folder of this kind holds
    content: Callable[[Path], bool] | None = None
    empty_is_new: bool = False  # an existing empty folder is written without --overwrite

    @property
    def is_folder(self) -> bool:
        return self.layout is not None

    def problem(self, path: Path) -> str | None:
        """Why the existing ``path`` is not of this kind, or None when it is."""
        if path.is_symlink():
            return "it is a symbolic link"
        if self.layout is not None:
            if not path.is_dir():
                return "it is not a folder"
            missing = [name for name in self.required if not (path / name).exists()]
            if missing and any(path.iterdir()):
                return f"it lacks {', '.join(missing)}"
            return layout_problem(path, self.layout)
        if path.is_dir():
            return "it is a folder"
        if not path.is_file():
            return "it is not a regular file"
        if self.content is not None and not self.content(path):
            return "its content is not what embedtrack writes there"
        return None

    def is_new(self, path: Path) -> bool:
        """Whether writing ``path`` replaces nothing (it is missing, or an empty folder where allowed)."""
        if not path.exists() and not path.is_symlink():
            return True
        return self.empty_is_new and path.is_dir() and not path.is_symlink() and not any(path.iterdir())


_SEQ: Layout = {r"t[0-9]{3,4}\.tiff?": FILE}
_GT: Layout = {"TRA": {r"man_track[0-9]{3,4}\.tiff?|man_track\.txt": FILE}, "SEG": {r"man_seg[0-9]{3,4}\.tiff?": FILE}}
_ST: Layout = {"SEG": {r"man_seg[0-9]{3,4}\.tiff?": FILE}}
_DATASET: Layout = {r"[0-9]+": _SEQ, r"[0-9]+_GT": _GT, r"[0-9]+_ST": _ST}
_RESULT: Layout = {r"mask[0-9]{3,4}\.tif|res_track\.txt": FILE}
MODEL_FILES = ("config.json", "weights.pt", "checkpoint.pt", "train_log.jsonl")
TRAIN_LOCK = ".train.lock"
_MODEL: Layout = {"|".join([*(re.escape(n) for n in MODEL_FILES), re.escape(TRAIN_LOCK),
                            *(temp_name_pattern(n, Path(n).suffix) for n in MODEL_FILES)]): FILE}

RESULT = Kind("result folder", _RESULT)
SYNTH_DATASET = Kind("synthetic dataset folder", {**_DATASET, r"synth\.json": FILE}, ("synth.json",), empty_is_new=True)
CTC_DATASET = Kind("CTC dataset folder", _DATASET)
DEMO_DATASET = Kind("demo dataset folder", {**_DATASET, r"synth\.json": FILE, r"[0-9]+_RES": _RESULT,
                                            r"[0-9]+_RES\.json": FILE}, ("synth.json",), empty_is_new=True)
MODEL = Kind("model folder", _MODEL, empty_is_new=True)
MODEL_CONFIG = Kind("model config.json", content=json_with())
MODEL_FILE = Kind("file of a model folder")  # weights.pt, checkpoint.pt: a regular file, not a link or folder
SETTINGS = Kind("settings file", content=json_with("sequence", "result", "inference"))
SCORES = Kind("scores file", content=json_with("result", "ground_truth", "scores"))
REPORT = Kind("batch report", content=json_with("root", "sequences"))
GIF = Kind("GIF animation", content=signature(b"GIF87a", b"GIF89a"))
PNG = Kind("PNG picture", content=signature(b"\x89PNG\r\n\x1a\n"))
MP4 = Kind("MP4 video", content=signature(b"ftyp", offset=4))


@dataclass(frozen=True)
class Output:
    """One path a command writes, and what it writes there."""

    path: Path
    kind: Kind

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))


def looks_like_result(folder: Path) -> bool:
    """Only regular files ``maskNNN.tif`` and ``res_track.txt`` (or nothing)."""
    return RESULT.problem(Path(folder)) is None


def looks_like_synth_dataset(folder: Path) -> bool:
    """What ``embedtrack synth`` writes: ``synth.json`` and sequence folders ``NN``, ``NN_GT``, ``NN_ST``."""
    return SYNTH_DATASET.problem(Path(folder)) is None


def looks_like_ctc_dataset(folder: Path) -> bool:
    """What a CTC dataset zip unpacks to: only the folders ``NN``, ``NN_GT``, ``NN_ST`` (no results, no models)."""
    return CTC_DATASET.problem(Path(folder)) is None


def looks_like_model(folder: Path) -> bool:
    """Only the files ``embedtrack train`` writes into a model folder (or nothing)."""
    return MODEL.problem(Path(folder)) is None


def _real(path: Path) -> Path:
    return Path(os.path.realpath(path))


def _overlap(out: Path, source: Path) -> str | None:
    if out == source:
        return "is"
    if out in source.parents:
        return "contains"
    if source in out.parents:
        return "lies inside"
    return None


def check_not_input(target: Path, inputs: Iterable[str | Path], role: str = "the input") -> None:
    """Refuse an output that is, contains or lies inside one of ``inputs`` (or a protected folder)."""
    out = _real(Path(target))
    named = [(Path(given), role) for given in inputs] + list(PROTECTED.items())
    for given, what in named:
        how = _overlap(out, _real(given))
        if how is not None:
            raise CTCUnsafeOutputError(f"{target}: the output {how} {what} {given}; choose another output "
                                       "(nothing was written or removed)")


def check_replaceable(output: Output, overwrite: bool) -> None:
    """Refuse an existing output without ``overwrite``, and one that is not of its kind even with it."""
    path, kind = output.path, output.kind
    if kind.is_new(path):
        return
    problem = kind.problem(path)
    if problem is not None:
        raise CTCUnsafeOutputError(f"{path}: exists and does not look like a {kind.what} ({problem}); --overwrite "
                                   f"only replaces a {kind.what}. Remove it yourself or choose another output")
    if not overwrite:
        raise CTCResultExistsError(f"{path}: exists; use --overwrite to replace it")
    if kind.is_folder and not os.access(path, os.W_OK | os.X_OK):  # it could be neither moved nor emptied
        raise CTCUnsafeOutputError(read_only_message(path))


def check_outputs(outputs: Iterable[Output], inputs: Iterable[str | Path] = (), overwrite: bool = False) -> None:
    """The whole rule for all outputs of one command (see the module doc); call it before any work."""
    outs = list(outputs)
    sources = list(inputs)
    for i, output in enumerate(outs):
        check_not_input(output.path, sources)
        check_not_input(output.path, [o.path for o in outs[:i]], "another output,")
    for output in outs:
        check_replaceable(output, overwrite)


def check_output(target: str | Path, inputs: Iterable[str | Path] = (), replace: bool = False,
                 kind: Kind = RESULT) -> None:
    """:func:`check_outputs` for a single output."""
    check_outputs([Output(Path(target), kind)], inputs, replace)


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs (ours counts as dead: a file with our pid was left by an earlier container)."""
    if pid == os.getpid():  # our own are created after this cleanup: one with our pid is a dead run's (Docker)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)


def remove_stale_temps(target: str | Path) -> list[Path]:
    """Remove the temporary files and folders killed runs left beside ``target``; returns what was handled."""
    target = Path(target)
    parent, pattern = target.parent, re.compile(temp_name_pattern(target.name, target.suffix), re.ASCII)
    if not parent.is_dir():
        return []
    handled = []
    for entry in sorted(parent.iterdir()):
        match = pattern.fullmatch(entry.name)
        if match is None or entry.is_symlink() or not (entry.is_dir() or entry.is_file()):
            continue
        if match.group(2) is not None and pid_alive(int(match.group(2))):
            continue
        previous = entry / "previous"
        if match.group(1) == "old" and (previous.exists() or previous.is_symlink()) and not target.exists():
            os.replace(previous, target)
            logger.warning("%s: put back the previous version an interrupted run had moved to %s", target, entry)
        else:
            logger.warning("%s: removing %s, left by an interrupted earlier run", target, entry.name)
        _remove(entry)
        handled.append(entry)
    return handled

