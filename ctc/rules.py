"""The CTC lineage rules, checked on the labels present in each frame and the declared tracks.

Pure functions without disk access: :func:`check_lineage` is shared by the result writer (before a result is
moved into place) and by :func:`ctc.validate.validate_result` (on a result folder). Errors make a result
invalid; warnings are deviations that py-ctcmetrics accepts (an empty frame).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from ctc.lineage import MAX_LABEL, TRACK_FILE_RES, Track

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


def sort_violations(violations: list[Violation]) -> None:
    """Sort in place: errors first, then by frame (rules about no frame first) and label."""
    violations.sort(key=lambda v: (v.severity != ERROR, -1 if v.frame is None else v.frame, v.label or 0))


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
        if t.parent == t.label:
            out.append(Violation(t.begin, t.label, f"track {t.label} is its own parent"))
        elif parent is None:
            out.append(Violation(t.begin, t.label, f"parent {t.parent} is not a declared track"))
        elif parent.end >= t.begin:
            out.append(Violation(t.begin, t.label, f"parent {t.parent} ends at frame {parent.end}, "
                                                   f"not before its child {t.label} begins at frame {t.begin}"))
    out.extend(_check_cycles(by_label))
    return out


def _check_cycles(by_label: Mapping[int, Track]) -> list[Violation]:
    """One violation per cycle of parent links longer than one track (a track that is its own parent is
    reported by :func:`_check_tracks`)."""
    out: list[Violation] = []
    state: dict[int, int] = {}  # 1: on the chain being followed, 2: done
    for start in sorted(by_label):
        chain: list[int] = []
        label = start
        while label in by_label and label not in state:
            state[label] = 1
            chain.append(label)
            label = by_label[label].parent
        if state.get(label) == 1 and label != by_label[label].parent:  # came back to this chain: a cycle
            cycle = chain[chain.index(label):]
            out.append(Violation(None, min(cycle), "parent links form a cycle: "
                                                   + " -> ".join(str(c) for c in [*cycle, label])))
        for seen in chain:
            state[seen] = 2
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
    sort_violations(out)
    return out
