"""Turn the simulation's per-frame instance labels into CTC-valid tracking ground truth.

Rules applied:

* each label keeps only its largest 4-connected piece (overlap resolution can cut a sliver off a cell);
* a cell with fewer than ``min_area`` pixels in view (cropped by the border, hidden by a neighbour) is gone
  from that frame and its pixels become background;
* a cell's visible frames are split into runs without gaps; every run is its own track, so no track ever
  disappears and reappears (a re-entering cell is a new track without parent);
* a daughter's first run gets its mother's last run as parent when the mother is visible in the frame right
  before the division and the daughter right at it; otherwise the daughter starts a new lineage;
* track ids are dense, ordered by first frame, and must fit uint16.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from skimage.measure import label as connected_components

from ctc.errors import CTCError
from ctc.lineage import MAX_LABEL, Track

MIN_AREA = 10


def clean_frame(labels: np.ndarray, min_area: int = MIN_AREA) -> np.ndarray:
    """Keep the largest connected piece of each label and drop labels smaller than ``min_area`` pixels."""
    pieces = connected_components(labels, background=0, connectivity=1)
    n = int(pieces.max())
    if n == 0:
        return labels
    sizes = np.bincount(pieces.ravel(), minlength=n + 1)
    owner = np.zeros(n + 1, labels.dtype)
    owner[pieces.ravel()] = labels.ravel()  # every piece lies inside one label
    order = np.lexsort((-sizes[1:], owner[1:])) + 1  # pieces grouped by label, largest first
    first = np.ones(len(order), bool)
    first[1:] = owner[order][1:] != owner[order][:-1]
    keep = np.zeros(n + 1, bool)
    keep[order[first]] = True
    keep &= sizes >= min_area
    keep[0] = False
    return np.where(keep[pieces], labels, 0)


def _runs(frames: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs of consecutive frame numbers, as (first, last)."""
    breaks = np.flatnonzero(np.diff(frames) > 1)
    starts = np.concatenate([[0], breaks + 1])
    ends = np.concatenate([breaks, [len(frames) - 1]])
    return [(int(frames[s]), int(frames[e])) for s, e in zip(starts, ends)]


def build_ground_truth(raw: Sequence[np.ndarray], parents: Mapping[int, int], births: Mapping[int, int],
                       min_area: int = MIN_AREA) -> tuple[list[np.ndarray], list[Track]]:
    """CTC masks (uint16, track ids) and tracks from per-frame simulation-id label images.

    ``parents`` maps a daughter's simulation id to its mother's, ``births`` a daughter's id to the frame of the
    division (its first frame).
    """
    cleaned = [clean_frame(labels, min_area) for labels in raw]
    present: dict[int, list[int]] = {}
    for t, labels in enumerate(cleaned):
        for sid in np.unique(labels):
            if sid:
                present.setdefault(int(sid), []).append(t)
    runs = [(begin, end, sid) for sid, frames in present.items() for begin, end in _runs(np.asarray(frames))]
    runs.sort()
    if len(runs) > MAX_LABEL:
        raise CTCError(f"synthetic sequence has {len(runs)} tracks, more than uint16 labels allow ({MAX_LABEL})")
    label_of: dict[tuple[int, int], int] = {(sid, begin): i + 1 for i, (begin, _, sid) in enumerate(runs)}
    first_run: dict[int, int] = {}
    last_run: dict[int, tuple[int, int]] = {}
    for begin, end, sid in runs:  # sorted by begin
        first_run.setdefault(sid, begin)
        last_run[sid] = (begin, end)
    tracks: list[Track] = []
    for begin, end, sid in runs:
        parent = 0
        mother = parents.get(sid, 0)
        if begin == first_run[sid] and mother in last_run and begin == births.get(sid, -1):
            m_begin, m_end = last_run[mother]
            if m_end == begin - 1:
                parent = label_of[(mother, m_begin)]
        tracks.append(Track(label_of[(sid, begin)], begin, end, parent))
    masks = []
    top = max(present, default=0)
    for t, labels in enumerate(cleaned):
        lut = np.zeros(top + 1, np.uint16)
        for begin, end, sid in runs:
            if begin <= t <= end:
                lut[sid] = label_of[(sid, begin)]
        masks.append(lut[labels])
    return masks, tracks
