"""Dataset statistics of the paper's Table 1 (right half): cell count and cell motility per sequence.

* **Cells in the last frame**: the number of labelled cells in the sequence's last annotated frame.
* **Overlap of the 10 % most motile cells**: for every cell present in two successive frames, the overlap of its
  two masks, intersection / area of the smaller mask (1 = did not move, 0 = moved out of its own footprint).
  Reported is the 10th percentile over all such (cell, t -> t+1) pairs, as in the paper: "the most motile 10 %
  of the cells have an overlap smaller than X". Divisions (mother -> daughter) are not pairs.

Masks and identities come from, in order of preference:

1. ``<SEQ>_ST/SEG`` masks with identities from the ``<SEQ>_GT/TRA`` markers (as in the paper), named by the
   rule the training labels use (:func:`ctc.overlap.name_by_markers`): a segment takes the id of the single
   marker it covers; segments covering no marker or several, or sharing their marker, are left out.
2. ``<SEQ>_ST/SEG`` alone: ST labels are not consistent over time, so cells are followed by maximal overlap - a
   segment at t and one at t+1 are the same cell when each is the other's largest intersection. A cell that moved
   completely off its previous footprint has no intersection and is not counted, so for very fast cells this
   estimate is too high (it can only miss the lowest overlaps); the number of pairs found is reported.
3. ``<SEQ>_GT/TRA`` alone: the tracking masks and their track ids. For real CTC data these are markers, not full
   segmentations, so the overlap describes the markers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from ctc.errors import CTCFormatError
from ctc.io import Sequence, SequencePaths, find_sequences, open_segmentation, open_tracking_gt
from ctc.labels import label_set
from ctc.overlap import mutual_best, name_by_markers, overlaps
from ctc.progress import progress

logger = logging.getLogger(__name__)

MOTILE_FRACTION = 0.10


@dataclass(frozen=True)
class SequenceStats:
    """Statistics of one sequence; ``overlap_p10`` is NaN when no cell was seen in two successive frames."""

    sequence: str
    source: str
    frames: int
    cells_last_frame: int
    pairs: int
    overlap_p10: float
    overlap_median: float


def overlaps_same_label(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Overlap (intersection / smaller area) of each label present in both frames with itself;
    labels keep their identity over time. A label that moved off its footprint gets 0."""
    table = overlaps(prev, cur)
    inter = {x: c for x, y, c in zip(table.a.tolist(), table.b.tolist(), table.pixels.tolist()) if x == y}
    common = np.intersect1d(label_set(prev), label_set(cur))
    smaller = np.minimum(table.area_a(common), table.area_b(common)).tolist()
    return np.array([inter.get(k, 0) / size for k, size in zip(common.tolist(), smaller)], dtype=float)


def overlaps_best_match(prev: np.ndarray, cur: np.ndarray) -> np.ndarray:
    """Overlap of segments matched by mutual maximal intersection (labels without identity over time)."""
    table = overlaps(prev, cur)
    fraction = dict(zip(zip(table.a.tolist(), table.b.tolist()), table.of_smaller().tolist()))
    return np.array(sorted(fraction[(x, y)] for x, y, _ in mutual_best(table, table.pixels)), dtype=float)


def _frames(st: Sequence | None, tra: Sequence | None) -> Iterator[tuple[int, np.ndarray]]:
    """``(frame number, identity-labelled frame)`` (see module doc); ST frames without a TRA frame are skipped."""
    if st is not None and tra is not None:
        in_tra = set(tra.indices)
        for index in st.indices:
            if index in in_tra:
                yield index, name_by_markers(st.read_index(index), tra.read_index(index))[0]
    else:
        seq = st if st is not None else tra
        assert seq is not None
        for i, index in enumerate(seq.indices):
            yield index, seq.read(i)


def sequence_stats(paths: SequencePaths) -> SequenceStats | None:
    """Statistics of one sequence, or None when it has neither ST nor GT tracking annotations."""
    st = open_segmentation(paths.st_seg) if paths.st_seg.is_dir() else None
    tra = open_tracking_gt(paths.gt_tra)[0] if paths.gt_tra.is_dir() else None
    if st is None and tra is None:
        logger.info("%s: no %s or %s, skipped", paths.raw, paths.st_seg, paths.gt_tra)
        return None
    source = "ST+GT/TRA" if st is not None and tra is not None else ("ST" if st is not None else "GT/TRA")
    last = st if st is not None else tra
    assert last is not None
    cells_last = len(label_set(last.read(len(last) - 1)))
    pair_fn = overlaps_best_match if source == "ST" else overlaps_same_label
    values: list[np.ndarray] = []
    prev: tuple[int, np.ndarray] | None = None
    for index, frame in progress(_frames(st, tra), total=len(last), desc=f"stats {paths.name}", unit="frame",
                             disable=None):
        if prev is not None and prev[0] == index - 1:  # only successive frames (ST may be sparse)
            values.append(pair_fn(prev[1], frame))
        prev = (index, frame)
    overlaps = np.concatenate(values) if values else np.zeros(0)
    p10 = float(np.quantile(overlaps, MOTILE_FRACTION)) if overlaps.size else float("nan")
    median = float(np.median(overlaps)) if overlaps.size else float("nan")
    return SequenceStats(paths.name, source, len(last), cells_last, int(overlaps.size), p10, median)


def dataset_stats(dataset_dir: str | Path) -> list[SequenceStats]:
    """Statistics of every sequence of a dataset that has ST or GT annotations."""
    dataset = Path(dataset_dir)
    out = [s for name in find_sequences(dataset) if (s := sequence_stats(SequencePaths(dataset, name)))]
    if not out:
        raise CTCFormatError(f"{dataset}: no sequence has silver truth (<SEQ>_ST/SEG) or ground truth "
                             "(<SEQ>_GT/TRA)")
    return out
