"""Divisions of a CTC lineage and the matching of found divisions to true ones (division precision, recall, F1).

A division is a track with two or more children (a parent with one child is a link across a gap). A found
division matches a true one when their daughters appear within ``tolerance`` frames of each other, the found
mother covers more than half of the true mother in the last frame where both are present (the CTC's matching
rule for a reference object), and every true daughter present in the later of the two daughter frames is
covered the same way by a distinct found daughter. Matching is one to one, true divisions in time order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from ctc.lineage import Track

__all__ = ["Division", "DivisionScore", "divisions", "match_divisions"]

Frames = Callable[[int], np.ndarray]


@dataclass(frozen=True)
class Division:
    """``mother`` divides into ``daughters``, which appear at frame ``t``."""

    t: int
    mother: int
    daughters: tuple[int, ...]


@dataclass(frozen=True)
class DivisionScore:
    found: int
    true: int
    matched: int

    @property
    def precision(self) -> float:
        return self.matched / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.matched / self.true if self.true else 1.0

    @property
    def f1(self) -> float:
        total = self.found + self.true
        return 2 * self.matched / total if total else 1.0

    def __str__(self) -> str:
        return (f"divisions found {self.found} (true {self.true}), matched {self.matched}: precision "
                f"{self.precision:.3f}, recall {self.recall:.3f}, F1 {self.f1:.3f}")


def divisions(tracks: Iterable[Track]) -> list[Division]:
    """The divisions of a lineage, in time order."""
    children: dict[int, list[Track]] = {}
    for track in tracks:
        if track.parent:
            children.setdefault(track.parent, []).append(track)
    found = [Division(min(k.begin for k in kids), mother, tuple(sorted(k.label for k in kids)))
             for mother, kids in children.items() if len(kids) >= 2]
    return sorted(found, key=lambda d: (d.t, d.mother))


def _covers(found: np.ndarray, label: int, true: np.ndarray, true_label: int) -> bool:
    """Whether ``label`` in ``found`` covers more than half of ``true_label`` in ``true``."""
    inside = true == true_label
    n = int(inside.sum())
    return n > 0 and int((found[inside] == label).sum()) * 2 > n


def _matches(f: Division, g: Division, found: Frames, true: Frames) -> bool:
    t_mother, t_kids = min(f.t, g.t) - 1, max(f.t, g.t)
    if not _covers(found(t_mother), f.mother, true(t_mother), g.mother):
        return False
    found_kids, true_kids = found(t_kids), true(t_kids)
    present = [d for d in g.daughters if (true_kids == d).any()]
    free = list(f.daughters)
    for daughter in present:
        hit = next((k for k in free if _covers(found_kids, k, true_kids, daughter)), None)
        if hit is None:
            return False
        free.remove(hit)
    return bool(present)


def match_divisions(found: Iterable[Track], true: Iterable[Track], found_frames: Frames, true_frames: Frames,
                    tolerance: int = 1) -> DivisionScore:
    """Match the divisions of a result (``found``, its label images by frame number ``found_frames``) to the
    truth (``true``, ``true_frames``: the TRA masks); see the module docstring."""
    ours, theirs = divisions(found), divisions(true)
    free = list(ours)
    matched = 0
    for g in theirs:
        hit = next((f for f in free if abs(f.t - g.t) <= tolerance and _matches(f, g, found_frames, true_frames)),
                   None)
        if hit is not None:
            free.remove(hit)
            matched += 1
    return DivisionScore(len(ours), len(theirs), matched)
