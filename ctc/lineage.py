"""Track data model and the streaming construction of a valid CTC lineage.

A CTC result is a set of label images plus ``res_track.txt`` lines ``L B E P``: track ``L`` is present in every
frame from ``B`` to ``E`` (inclusive) and in no other frame, and ``P`` is the track it divided from (0 = none).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from ctc.errors import CTCError
from ctc.labels import unique_inverse

logger = logging.getLogger(__name__)

#: Track files of the ground truth (``<SEQ>_GT/TRA``) and of a result (``<SEQ>_RES``).
TRACK_FILE_GT = "man_track.txt"
TRACK_FILE_RES = "res_track.txt"

#: Largest track id a uint16 label image can hold.
MAX_LABEL = 65535


@dataclass(frozen=True)
class Track:
    """One CTC track: ``label`` present from frame ``begin`` to ``end`` (inclusive); ``parent`` 0 means none."""

    label: int
    begin: int
    end: int
    parent: int

    def __str__(self) -> str:
        return f"{self.label} {self.begin} {self.end} {self.parent}"


class LineageBuilder:
    """Build a CTC lineage frame by frame, assigning global track ids on the fly.

    Feed every frame in order with :meth:`add_frame`: the frame's instance labels (any positive integers, 0 is
    background) and the links ``{label at t: label at t-1}`` found by the tracker. A label with no link starts a
    new track; a label that is the only one linked to a previous label continues that label's track; two or
    more labels linked to the same previous label are a division: the mother track ends at ``t-1`` and each
    daughter starts a new track whose parent is the mother. Because a track only continues from ``t-1`` to
    ``t``, no track can have a temporal gap. A cell found again after frames in which it was missed is given
    as a *gap link* (``parents={label at t: track id that ended before t-1}``): it starts a new track whose
    parent is the earlier track, the CTC's way of saying so (a parent with a single child).

    Empty frames: a frame with no cell is returned as an all-zero image and listed in :attr:`empty_frames`;
    all running tracks end before it. Nothing is invented to fill it (:class:`ctc.io.ResultWriter` writes it
    as an empty mask and logs a warning).

    Raises :class:`~ctc.errors.CTCError` before a track id would exceed 65535 (uint16 label images).
    """

    def __init__(self) -> None:
        self._next_id = 1
        self._last_t: int | None = None
        self._prev_ids: dict[int, int] = {}  # local label at t-1 -> global id
        self.ids: dict[int, int] = self._prev_ids  # local label -> global id of the last frame added
        self._begin: dict[int, int] = {}
        self._end: dict[int, int] = {}
        self._parent: dict[int, int] = {}
        self.empty_frames: list[int] = []

    def _new_track(self, t: int, parent: int) -> int:
        if self._next_id > MAX_LABEL:
            raise CTCError(f"frame {t}: more than {MAX_LABEL} tracks; CTC uint16 label images cannot hold them")
        label = self._next_id
        self._next_id += 1
        self._begin[label] = t
        self._end[label] = t
        self._parent[label] = parent
        return label

    def add_frame(self, t: int, labels: np.ndarray, links: Mapping[int, int],
                  parents: Mapping[int, int] | None = None) -> np.ndarray:
        """Relabel frame ``t`` with global track ids (uint16) and extend the lineage with its ``links``;
        ``parents`` are gap links ``{label at t without a link: id of a track that ended before t-1}``."""
        labels = np.asarray(labels)
        if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
            raise CTCError(f"frame {t}: expected a 2-D integer label image, got {labels.dtype} {labels.shape}")
        if self._last_t is not None and t != self._last_t + 1:
            raise CTCError(f"frame {t}: frames must be added in order, the previous one was {self._last_t}")
        local, inverse = unique_inverse(labels)
        present = [int(v) for v in local if v != 0]
        if local.size and local[0] < 0:
            raise CTCError(f"frame {t}: negative labels in the label image")
        valid = {int(c): int(p) for c, p in links.items() if int(p) in self._prev_ids and int(c) in present}
        if len(valid) != len(links):
            logger.warning("frame %d: ignoring %d link(s) to labels not present", t, len(links) - len(valid))
        children: dict[int, list[int]] = {}
        for child, prev in valid.items():
            children.setdefault(prev, []).append(child)
        gaps = self._gap_parents(t, parents or {}, valid)
        ids: dict[int, int] = {}
        for label in present:
            prev = valid.get(label)
            if prev is None:
                ids[label] = self._new_track(t, gaps.get(label, 0))
            elif len(children[prev]) == 1:
                ids[label] = self._prev_ids[prev]
                self._end[ids[label]] = t
            else:
                ids[label] = self._new_track(t, self._prev_ids[prev])
        if not present:
            logger.debug("frame %d has no cells; it stays empty in the result", t)
            self.empty_frames.append(t)
        lut = np.array([ids.get(int(v), 0) for v in local], dtype=np.uint16)
        self._prev_ids = self.ids = ids
        self._last_t = t
        return lut[inverse]

    def _gap_parents(self, t: int, parents: Mapping[int, int], valid: Mapping[int, int]) -> dict[int, int]:
        """The gap links that can be kept: to a known track that ended before ``t-1``, for a label without a
        link; the others are logged and dropped."""
        kept = {int(c): int(p) for c, p in parents.items()
                if int(c) not in valid and int(p) in self._end and self._end[int(p)] < t - 1}
        if len(kept) != len(parents):
            logger.warning("frame %d: ignoring %d gap link(s) to tracks not ended before t-1", t,
                           len(parents) - len(kept))
        return kept

    def tracks(self) -> list[Track]:
        """All tracks so far, sorted by label."""
        return [Track(k, self._begin[k], self._end[k], self._parent[k]) for k in sorted(self._begin)]


def division_count(tracks: Iterable[Track]) -> int:
    """The number of divisions: tracks that are the parent of two or more tracks (a parent with one child is a
    link across a gap, not a division)."""
    children: dict[int, int] = {}
    for track in tracks:
        if track.parent:
            children[track.parent] = children.get(track.parent, 0) + 1
    return sum(n >= 2 for n in children.values())
