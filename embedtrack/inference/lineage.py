"""The lineage stage: corrections across a few frames after the frame-pair linking of paper §3.4.

§3.4 links each frame to the one before it and takes every instance at face value, so one frame of
segmentation noise becomes a lineage event: a cell cut in two for a frame is a division, two touching cells
merged for a frame and separate again are a division of the merged instance, a cell missed for a frame ends its
track and starts a new one, a speck of one frame is a track. This stage keeps §3.4 as the first pass and
corrects its output with a bounded look-ahead, so streaming (:meth:`embedtrack.inference.tracker.Tracker.iter_track`)
keeps flat memory: a frame leaves the stage once the frames its corrections look at have arrived.

Corrections, each an :class:`~embedtrack.models.inference_config.InferenceConfig` setting (0 / False: off):

* **division validation** (``division_min_frames`` k): a division stands only if both daughters persist for
  k frames (a daughter dividing again counts as persisting) and, with ``divide_apart``, only from the first
  frame in which the daughters no longer touch (a dividing nucleus the segmentation cuts in two before the
  daughters separate; on real Fluo-N2DH-SIM+ 01 the bundled model's divisions came ~2 frames early).
  Otherwise the short-lived daughter is merged back into its sibling when the two touch (that frame's mask is
  fixed, and so is any later frame where the fragment is again claimed beside its sibling), or it becomes a
  track of its own when it does not. An instance
  that started a track beside the only successor of the mask its pixels point to (a fragment the linker's
  ``min_daughter_ratio`` turned away) is merged the same way, or, with ``restore_divisions``, made the
  second daughter of that mask when it and its sibling both last k frames;
* **merges undone** (``undo_merges``, checked before the divisions): when a mask at t-1 divides at t and
  at least a fifth of the pixels of that mask point to a second cell at t-2 whose track ended there, it was two touching cells merged
  for a frame: the mask is split between the two tracks (each pixel to the cell its tracking offset points to,
  the rest to the nearest such pixel) and each cell at t continues the part its pixels point to;
* **gap closing** (``gap_frames`` g, ``gap_reach``): a track that starts at t is joined to a track that ended
  at most g frames earlier (its cell missed in between) when the position its tracking offsets point to at
  t-1 lies within ``gap_reach`` cell radii of where the ended cell would be (its last position moved on by its
  last velocity); one-to-one, by least distance (``scipy.optimize.linear_sum_assignment``). The missing frames
  stay empty; the continuing track gets the ended one as its parent, the CTC's link across a gap;
* **short-track cleanup** (``min_track_frames`` m): a track shorter than m frames with no parent and no
  children is removed from the masks (a track reaching the end of the sequence is kept).

Given masks (``--masks``) are kept as they are unless ``edit_given_masks``: without it, a fragment is
detached instead of merged, a merge is resolved by a gap link from the second cell instead of a split, and no
track is removed. Where the linker had no tracking offsets, the pixels' own positions stand in for them.

Pure array and graph code (NumPy, SciPy), no torch.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Any, Iterable, Protocol

import numpy as np
from scipy.optimize import linear_sum_assignment

from ctc.lineage import LineageBuilder, Track
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.inference import lineage_geometry as geometry

logger = logging.getLogger(__name__)

__all__ = ["LineageStage", "LinkedFrame", "lookahead"]


class LinkedFrame(Protocol):
    """What the stage reads and updates of a linked frame (e.g. :class:`embedtrack.inference.tracker.FrameResult`):
    ``instances`` (labels), ``links`` ``{label at t: label at t-1}``, ``shifted`` (``(fg, targets)``: flat
    indices of the instance pixels and where their tracking offsets land at t-1, or None) and ``labels``
    (the CTC track ids, set when the frame leaves the stage)."""

    t: int
    instances: np.ndarray
    links: dict[int, int]
    shifted: tuple[np.ndarray, np.ndarray] | None
    labels: np.ndarray


@dataclass
class _Slot:
    """A frame inside the stage's window: the frame, its gap links ``{label: (frame t, label there)}`` and,
    once committed, its labels' track ids."""

    frame: Any
    gap_parents: dict[int, tuple[int, int]]
    ids: dict[int, int] | None = None


@dataclass
class _Ended:
    """A track that ended without children, for gap closing: last frame, position, velocity, radius."""

    t: int
    y: float
    x: float
    vy: float
    vx: float
    radius: float


def lookahead(config: InferenceConfig) -> int:
    """Frames a frame waits for after its own before it leaves the stage."""
    return max(config.division_min_frames - 1, config.min_track_frames - 1, 0)


# ------------------------------------------------------------------------------------------ the stage


class LineageStage:
    """Streaming corrections after linking (see the module docstring): :meth:`push` each linked frame in order,
    take the frames it returns (with ``labels`` set to CTC track ids), :meth:`flush` at the end; :meth:`tracks`
    is the lineage. ``editable``: the corrections may change the masks (False for given masks unless
    ``edit_given_masks``)."""

    def __init__(self, config: InferenceConfig, editable: bool = True) -> None:
        self.config = config
        self.editable = editable
        self.ahead = lookahead(config)
        self.builder = LineageBuilder()
        self.window: deque[_Slot] = deque()
        self.base = 0  # position of window[0] in the stream
        self.next_event = 1  # next frame whose divisions are checked
        self.next_commit = 0
        self.ended: dict[int, _Ended] = {}
        self.stats = {"divisions_rejected": 0, "fragments_merged": 0, "merges_split": 0, "gaps_closed": 0,
                      "tracks_removed": 0, "divisions_restored": 0}

    def tracks(self) -> list[Track]:
        return self.builder.tracks()

    def push(self, frame: Any) -> list[Any]:
        """Add the next linked frame; returns the frames that are final now (in order)."""
        self.window.append(_Slot(frame, {}))
        last = self.base + len(self.window) - 1
        while self.next_event <= last - self.ahead:
            self._events(self.next_event, last)
            self.next_event += 1
        return self._commit_until(self.next_event - 1)

    def flush(self) -> list[Any]:
        """The end of the sequence: correct and return the frames still held."""
        last = self.base + len(self.window) - 1
        while self.next_event <= last:
            self._events(self.next_event, last)
            self.next_event += 1
        return self._commit_until(last + 1)

    def run(self, frames: Iterable[Any]) -> list[Any]:
        """All frames of a sequence through the stage."""
        out = []
        for frame in frames:
            out.extend(self.push(frame))
        return out + self.flush()

    # -------------------------------------------------------------------------------------- window

    def _slot(self, t: int) -> _Slot:
        return self.window[t - self.base]

    def _frame(self, t: int) -> Any:
        return self.window[t - self.base].frame

    def _events(self, e: int, last: int) -> None:
        """Check the divisions and fragments of frame ``e`` (the frames up to ``last`` have arrived)."""
        if e - self.base >= len(self.window) or e - 1 < self.base:
            return
        if self.config.undo_merges and e - 2 >= self.base:
            for mother, kids in geometry.children(self._frame(e)).items():
                if len(kids) == 2:
                    self._undo_merge(e, mother, kids)
        if self.config.division_min_frames > 1:
            self._validate_divisions(e, last)

    def _commit_until(self, stop: int) -> list[Any]:
        """Commit the frames before ``stop``; keep the last two committed ones as context."""
        out = []
        while self.next_commit < stop and self.next_commit - self.base < len(self.window):
            out.append(self._commit(self.next_commit))
            self.next_commit += 1
        while self.window and self.base < self.next_commit - 2:
            self.window.popleft()
            self.base += 1
        return out

    def _commit(self, c: int) -> Any:
        slot = self._slot(c)
        frame = slot.frame
        roots = self._roots(c)
        if self.config.min_track_frames > 1 and self.editable:
            roots = self._remove_short(c, roots)
        parents = {label: self._slot(t).ids[old] for label, (t, old) in slot.gap_parents.items()  # type: ignore
                   if t >= self.base and old in (self._slot(t).ids or {})}
        for parent in parents.values():
            self.ended.pop(parent, None)
        if self.config.gap_frames > 0:
            parents.update(self._close_gaps(c, [r for r in roots if r not in parents]))
        before = dict(self.builder.ids)
        frame.labels = self.builder.add_frame(frame.t, frame.instances, frame.links, parents)
        slot.ids = dict(self.builder.ids)
        if self.config.gap_frames > 0:
            self._note_ended(c, before, slot.ids, frame.links)
        return frame

    def _roots(self, c: int) -> list[int]:
        """Labels of frame ``c`` that start a track (no link, no gap link)."""
        slot = self._slot(c)
        present = np.unique(slot.frame.instances)
        return [int(v) for v in present if v and int(v) not in slot.frame.links and int(v) not in slot.gap_parents]

    # -------------------------------------------------------------------------------------- persistence

    def _persists(self, t: int, label: int, need: int, last: int) -> bool:
        """Whether the track through ``label`` at ``t`` lasts ``need`` frames from ``t`` on (dividing again or
        reaching the last frame held counts as lasting)."""
        for n in range(1, need):
            if t + n > last:
                return True
            kids = geometry.children(self._frame(t + n)).get(label, [])
            if len(kids) != 1:
                return len(kids) > 1
            label = kids[0]
        return True

    def _short_tracklet(self, t: int, label: int, need: int) -> list[tuple[int, int]] | None:
        """The ``(frame, label)`` of a track from ``label`` at ``t`` on when it ends, without dividing, before
        ``need`` frames; None when it lasts longer, divides or is still present in the last frame held."""
        out = [(t, label)]
        last = self.base + len(self.window) - 1
        for n in range(1, need):
            if t + n > last:
                return None
            kids = geometry.children(self._frame(t + n)).get(label, [])
            if len(kids) != 1:
                return out if not kids else None
            label = kids[0]
            out.append((t + n, label))
        return None

    # -------------------------------------------------------------------------------------- corrections

    def _validate_divisions(self, e: int, last: int) -> None:
        """Divisions at ``e`` whose daughters do not both last ``division_min_frames``: the short one is merged
        into its sibling when they touch (else detached); then fragments turned away by the linker."""
        frame, need = self._frame(e), self.config.division_min_frames
        for mother, kids in geometry.children(frame).items():
            if len(kids) != 2:
                continue
            lasts = [self._persists(e, k, need, last) for k in kids]
            apart = not (self.config.divide_apart and self.editable and geometry.touch(frame.instances, *kids))
            if all(lasts) and apart:
                continue
            self.stats["divisions_rejected"] += 1
            areas = [int((frame.instances == k).sum()) for k in kids]
            short = 0 if (lasts[0], areas[0]) < (lasts[1], areas[1]) else 1
            self._merge_or_detach(e, kids[short], kids[1 - short])
        self._merge_fragments(e, last)

    def _merge_or_detach(self, e: int, fragment: int, into: int) -> None:
        frame = self._frame(e)
        if self.editable and geometry.touch(frame.instances, fragment, into):
            self._merge(e, fragment, into)
        else:
            frame.links.pop(fragment, None)

    def _merge(self, e: int, fragment: int, into: int) -> None:
        """Label ``fragment`` becomes part of ``into`` in frame ``e``; its successors now claim ``into``."""
        frame = self._frame(e)
        frame.instances[frame.instances == fragment] = into
        frame.links.pop(fragment, None)
        self.stats["fragments_merged"] += 1
        if e + 1 - self.base < len(self.window):
            after = self._frame(e + 1)
            for child, parent in list(after.links.items()):
                if parent == fragment:
                    after.links[child] = into

    def _merge_fragments(self, e: int, last: int) -> None:
        """Instances at ``e`` without a link whose pixels point mostly to a mask with exactly one successor:
        merged into that successor when they touch it and do not last ``division_min_frames``; made its second
        daughter when both last that long (``restore_divisions``)."""
        frame, prev = self._frame(e), self._frame(e - 1)
        children = geometry.children(frame)
        need = self.config.division_min_frames
        for label in [int(v) for v in np.unique(frame.instances) if v and int(v) not in frame.links]:
            votes = geometry.votes(frame, prev.instances, label)
            if not votes:
                continue
            mother = max(votes, key=lambda k: (votes[k], -k))
            kids = children.get(mother, [])
            if len(kids) != 1:
                continue
            if not self._persists(e, label, need, last):
                if self.editable and geometry.touch(frame.instances, label, kids[0]):
                    self._merge(e, label, kids[0])
            elif self.config.restore_divisions and self._persists(e, kids[0], need, last):
                frame.links[label] = mother  # a daughter the linker's min_daughter_ratio turned away
                children[mother] = kids + [label]
                self.stats["divisions_restored"] += 1

    def _undo_merge(self, e: int, mother: int, kids: list[int]) -> None:
        """A division at ``e`` of a mask at ``e-1`` that two cells entered: split it between them (or, with
        masks that may not change, let the second cell's track continue in one daughter across a gap)."""
        prev, before = self._frame(e - 1), self._frame(e - 2)
        entering = self._entering(e - 1, mother)
        if len(entering) != 2:
            return
        parts = geometry.split_mask(prev.instances == mother, prev, before.instances, entering)
        if parts is None:
            return
        frame = self._frame(e)
        first, second = geometry.assign_parts(frame, kids, parts)
        self.stats["merges_split"] += 1
        prev.links[mother] = entering[0]
        if self.editable:
            new = int(prev.instances.max()) + 1
            prev.instances[parts == 2] = new
            prev.links[new] = entering[1]
            frame.links[second] = new
        else:
            frame.links.pop(second)
            self._slot(e).gap_parents[second] = (e - 2, entering[1])
        frame.links[first] = mother

    def _entering(self, t: int, label: int) -> list[int]:
        """The cells at ``t-1`` that entered mask ``label`` at ``t``: its own predecessor (if any) first, then
        cells whose track ended at ``t-1`` and that receive at least ``geometry.MERGE_MIN_SHARE`` of its pixels."""
        frame, before = self._frame(t), self._frame(t - 1)
        votes = geometry.votes(frame, before.instances, label)
        size = int((frame.instances == label).sum())
        continued = set(frame.links.values())
        own = frame.links.get(label)
        ended = sorted((v for v, n in votes.items() if v not in continued and n >= geometry.MERGE_MIN_SHARE * size),
                       key=lambda v: -votes[v])
        return ([own] if own is not None else []) + ended[: 2 - (own is not None)]

    def _remove_short(self, c: int, roots: list[int]) -> list[int]:
        """Remove the tracks starting at ``c`` without a parent that end, without children, before
        ``min_track_frames``; returns the roots kept."""
        kept = []
        for label in roots:
            frames = self._short_tracklet(c, label, self.config.min_track_frames)
            if frames is None:
                kept.append(label)
                continue
            self.stats["tracks_removed"] += 1
            for t, lab in frames:
                frame = self._frame(t)
                frame.instances[frame.instances == lab] = 0
                frame.links.pop(lab, None)
        return kept

    def _close_gaps(self, c: int, roots: list[int]) -> dict[int, int]:
        """Gap links ``{root label at c: ended track id}``, one to one by least distance within reach."""
        g = self.config.gap_frames
        ended = [(k, e) for k, e in self.ended.items() if c - 1 - g <= e.t <= c - 2]
        if not roots or not ended:
            return {}
        frame = self._frame(c)
        fg, targets = geometry.shifted(frame)
        where = np.zeros(frame.instances.size, np.int64)
        where[fg] = targets
        seen = geometry.centres(frame.instances, where[np.flatnonzero(frame.instances)])  # positions at c-1
        cost = np.full((len(roots), len(ended)), np.inf)
        for i, root in enumerate(roots):
            y, x, _ = seen[root]
            for j, (_, end) in enumerate(ended):
                steps = c - 1 - end.t
                d = float(np.hypot(y - end.y - end.vy * steps, x - end.x - end.vx * steps))
                if d <= self.config.gap_reach * end.radius:
                    cost[i, j] = d
        ok = np.isfinite(cost)
        if not ok.any():
            return {}
        rows, cols = linear_sum_assignment(np.where(ok, cost, 1e12))
        links = {roots[i]: ended[j][0] for i, j in zip(rows, cols) if ok[i, j]}
        for parent in links.values():
            del self.ended[parent]
        self.stats["gaps_closed"] += len(links)
        return links

    def _note_ended(self, c: int, before: dict[int, int], ids: dict[int, int], links: dict[int, int]) -> None:
        """Remember the tracks of frame ``c-1`` that did not go on at ``c`` (for gap closing); forget those
        too old to be joined."""
        g = self.config.gap_frames
        for track in [k for k, e in self.ended.items() if e.t < c - g]:
            del self.ended[track]
        if c - 1 < self.base or not before:
            return
        went_on = {before[p] for p in links.values() if p in before}
        gone = {label: track for label, track in before.items() if track not in went_on}
        if not gone:
            return
        prev = self._frame(c - 1)
        fg, targets = geometry.shifted(prev)
        where = np.zeros(prev.instances.size, np.int64)
        where[fg] = targets
        now = geometry.centres(prev.instances)
        then = geometry.centres(prev.instances, where[np.flatnonzero(prev.instances)]) if prev.shifted is not None else now
        for label, track in gone.items():
            if label not in now:
                continue
            y, x, n = now[label]
            py, px, _ = then[label]
            self.ended[track] = _Ended(c - 1, y, x, y - py, x - px, float(np.sqrt(n / np.pi)))
