"""The CTC consistency rules for a result folder (``maskNNN.tif`` + ``res_track.txt``).

Errors make a result invalid. Their verdict agrees with py-ctcmetrics' ``validate_sequence`` on the rules that
it checks (the lineage rules). On file-format rules py-ctcmetrics does not check (equal frame shapes, contiguous
file numbers, tracks declared beyond the last mask, unreadable files) this module is stricter.

Warnings are CTC format deviations that py-ctcmetrics accepts, so they do not make the result invalid:

* an empty frame (no cell in the mask) - py-ctcmetrics only warns, but some versions of the CTC evaluation tools
  stop on an empty result frame;
* integer masks that are not uint16 (the CTC asks for 16-bit label images).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
from tqdm import tqdm

from ctc.errors import CTCFormatError
from ctc.io import (TRACK_FILE_GT, TRACK_FILE_RES, discover_frames, frame_name, read_tiff, read_track_file,
                    tiff_header)
from ctc.labels import label_set
from ctc.lineage import MAX_LABEL, Track

logger = logging.getLogger(__name__)

ERROR = "error"
WARNING = "warning"


@dataclass
class Violation:
    """One broken rule; ``frame``/``label`` are None when the rule is not about one frame or label."""

    frame: int | None
    label: int | None
    message: str
    severity: str = ERROR

    def __str__(self) -> str:
        where = []
        if self.frame is not None:
            where.append(f"frame {self.frame}")
        if self.label is not None:
            where.append(f"label {self.label}")
        prefix = "warning: " if self.severity == WARNING else ""
        return f"{prefix}{', '.join(where)}: {self.message}" if where else f"{prefix}{self.message}"


def errors_only(violations: Iterable[Violation]) -> list[Violation]:
    """The violations that make a result invalid."""
    return [v for v in violations if v.severity == ERROR]


def _check_tracks(tracks: list[Track], track_file: str) -> list[Violation]:
    out: list[Violation] = []
    if not tracks:
        out.append(Violation(None, None, f"no tracks declared in {track_file}"))
    counts: dict[int, int] = {}
    for t in tracks:
        counts[t.label] = counts.get(t.label, 0) + 1
    for label, n in sorted(counts.items()):
        if n > 1:
            out.append(Violation(None, label, f"declared {n} times in {track_file} (labels must be unique)"))
    by_label = {t.label: t for t in tracks}
    for t in tracks:
        if t.label == 0 or t.label > MAX_LABEL:
            out.append(Violation(None, t.label, f"track label must be in 1..{MAX_LABEL}"))
        if t.end < t.begin:
            out.append(Violation(None, t.label, f"track ends (frame {t.end}) before it begins (frame {t.begin})"))
        if t.parent == 0:
            continue
        parent = by_label.get(t.parent)
        if parent is None:
            out.append(Violation(t.begin, t.label, f"parent {t.parent} is not a declared track"))
        elif parent.end >= t.begin:
            out.append(Violation(t.begin, t.label, f"parent {t.parent} ends at frame {parent.end}, "
                                                   f"not before its child {t.label} begins at frame {t.begin}"))
    return out


def check_lineage(frame_labels: Mapping[int, Iterable[int]], tracks: Iterable[Track],
                  frames: Iterable[int] | None = None, track_file: str = TRACK_FILE_RES) -> list[Violation]:
    """Check declared ``tracks`` against the labels present in each frame (``{frame number: labels}``).

    Pure function (no disk access): each label present in every frame from B to E and in no other; E >= B;
    parents exist and end before their children begin; every label in the masks declared; unique labels;
    no track declared outside the frames; empty frames (warnings). ``frames`` are all frame numbers of the
    result (default: the keys of ``frame_labels``); frames without an entry (unreadable) are not checked.
    """
    tracks = list(tracks)
    out = _check_tracks(tracks, track_file)
    frames = sorted(frame_labels) if frames is None else sorted(frames)
    presence: dict[int, set[int]] = {}
    for frame in frames:
        if frame not in frame_labels:
            continue
        labels = [int(v) for v in frame_labels[frame] if int(v) != 0]
        if not labels:
            out.append(Violation(frame, None, "empty frame (no cell in the mask); py-ctcmetrics accepts it, "
                                              "some CTC evaluation tool versions stop on it", WARNING))
        for label in labels:
            presence.setdefault(label, set()).add(frame)
    declared = {t.label: t for t in tracks}
    first, last = (frames[0], frames[-1]) if frames else (0, -1)
    for label, seen in sorted(presence.items()):
        track = declared.get(label)
        if track is None:
            for frame in sorted(seen):
                out.append(Violation(frame, label, f"label in the mask is not declared in {track_file}"))
            continue
        for frame in sorted(f for f in seen if not track.begin <= f <= track.end):
            out.append(Violation(frame, label, f"label in the mask outside its track {track.begin}..{track.end}"))
    for track in tracks:
        if track.end < track.begin:
            continue
        seen = presence.get(track.label, set())
        if track.begin < first or track.end > last:
            out.append(Violation(None, track.label, f"track {track.begin}..{track.end} reaches beyond the "
                                                    f"mask frames {first}..{last}"))
        lo, hi = max(track.begin, first), min(track.end, last)
        missing = [f for f in range(lo, hi + 1) if f not in seen and f in frame_labels]
        gap = bool(seen) and any(min(seen) < f < max(seen) for f in missing)
        for frame in missing:
            kind = " (temporal gap)" if gap and min(seen) < frame < max(seen) else ""
            out.append(Violation(frame, track.label, f"label missing from the mask inside its track "
                                                     f"{track.begin}..{track.end}{kind}"))
    out.sort(key=lambda v: (v.severity != ERROR, -1 if v.frame is None else v.frame, v.label or 0))
    return out


def validate_result(res_dir: str | Path) -> list[Violation]:
    """Check a result folder against every CTC rule; an empty list means valid without warnings.

    A ground-truth ``<SEQ>_GT/TRA`` folder (``man_trackNNN.tif`` + ``man_track.txt``, no masks) is checked
    by the same rules.

    File-level problems (no masks, gaps in file numbers, unreadable files, shapes, dtypes, a missing or
    malformed ``res_track.txt``) are reported as violations too, not raised. Reads every mask once.
    """
    res_dir = Path(res_dir)
    out: list[Violation] = []
    prefix, track_file = "mask", TRACK_FILE_RES
    if not any(res_dir.glob("mask*.tif")) and (res_dir / TRACK_FILE_GT).is_file():
        prefix, track_file = "man_track", TRACK_FILE_GT  # a ground-truth TRA folder follows the same rules
    try:
        indices, files, ndigits = discover_frames(res_dir, prefix)
    except CTCFormatError as err:
        return [Violation(None, None, str(err))]
    for missing in sorted(set(range(indices[0], indices[-1] + 1)) - set(indices)):
        out.append(Violation(missing, None, f"{frame_name(prefix, missing, ndigits)} is missing "
                                            "(file numbers must be contiguous)"))
    if indices[0] != 0:
        out.append(Violation(indices[0], None, "first mask is not mask000: frame numbers must match the input "
                                               "frames", WARNING))
    try:
        tracks: list[Track] | None = read_track_file(res_dir / track_file)
    except CTCFormatError as err:
        out.append(Violation(None, None, str(err)))
        tracks = None
    frame_labels: dict[int, np.ndarray] = {}
    shape: tuple[int, ...] | None = None
    for index, file in tqdm(list(zip(indices, files)), desc="validate", unit="frame", leave=False,
                             disable=None):
        try:
            tiff_header(file)
            labels = read_tiff(file)
        except CTCFormatError as err:
            out.append(Violation(index, None, str(err)))
            continue
        if not np.issubdtype(labels.dtype, np.integer):
            if not np.issubdtype(labels.dtype, np.floating) or not np.array_equal(labels, np.round(labels)):
                out.append(Violation(index, None, f"{file.name} has dtype {labels.dtype} with non-integer "
                                                  "values, CTC masks are uint16 label images"))
                continue
            out.append(Violation(index, None, f"{file.name} has dtype {labels.dtype}, CTC masks are uint16",
                                 WARNING))
            labels = labels.astype(np.int64)
        elif labels.dtype != np.uint16:
            out.append(Violation(index, None, f"{file.name} has dtype {labels.dtype}, CTC masks are uint16",
                                 WARNING))
        if shape is None:
            shape = labels.shape
        elif labels.shape != shape:
            out.append(Violation(index, None, f"{file.name} has shape {labels.shape}, "
                                              f"{files[0].name} has {shape}"))
        frame_labels[index] = label_set(labels)
    if tracks is not None:
        out.extend(check_lineage(frame_labels, tracks, frames=indices, track_file=track_file))
    out.sort(key=lambda v: (v.severity != ERROR, -1 if v.frame is None else v.frame, v.label or 0))
    logger.debug("%s: %d violation(s)", res_dir, len(out))
    return out
