"""Training data from CTC folders (paper §4.3): labels, time split, crop pairs, augmentation.

Labels per preset (see :mod:`embedtrack.models.presets`):

* ``gt``: the GT/TRA masks are full segmentations and carry the track ids.
* ``st``: each silver-truth mask takes the track id of the GT TRA marker it covers when it covers exactly one;
  masks covering none or several markers (and markers claimed by several masks) are dropped.
* ``sparse``: the CTC ground truth as shipped, TRA markers on every frame and SEG outlines on some
  (:mod:`embedtrack.training.sparse_labels`): outlined frames give full masks, the others markers with an unknown ring.
* ``derive_links=True`` (data with ST but no TRA ground truth, e.g. the PhC-C2DL-PSC frames shipped for
  tests): ST masks are linked between successive frames by overlap. A mask continues the track of the mask at
  t-1 it overlaps most when both are each other's best match and the overlap is at least half of the
  smaller mask; all other masks start new tracks without parent (no divisions are derived).

The lineage comes from ``man_track.txt``; a predecessor counts only where it is present at t-1.

Time split (paper §4.3: the last 10 % of each sequence validate): the held-out frames are one block, from the
first to the last of the last ``val_fraction`` of the frames that have full outlines, to the end of the sequence
when every frame has them. Training pairs (t-1, t) lie wholly outside the block, so no frame with an outline in
the block is ever trained on; with sparse outlines (e.g. GOWT1: outlines on frames 2-47 of 92) the frames after
the block still train. The preset sets the fraction (a quarter where outlines are few or the
dataset has only one sequence, as for the real CTC data, else 10 %).

Normalisation (:mod:`embedtrack.inference.preprocess`): every frame is scaled by its own 1st/99th percentiles ("per
frame"), in training and in inference alike, so tiles of one frame share one intensity scale. Label images
whose ids do not fit uint16 are refused, never wrapped.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ctc.errors import CTCFormatError
from ctc.io import (TRACK_FILE_GT, Sequence, SequencePaths, find_sequences, frame_name, open_segmentation, open_sequence,
                    open_tracking_gt, to_uint16, write_tiff, write_track_file)
from ctc.labels import label_set, unique_inverse
from ctc.lineage import Track
from ctc.overlap import mutual_best, name_by_markers, overlaps
from embedtrack.errors import EmbedTrackError
from embedtrack.inference import preprocess
from embedtrack.training import sparse_labels
from embedtrack.models.presets import Preset

logger = logging.getLogger(__name__)

VAL_FRACTION = 0.1


@dataclass
class LabelReport:
    """How many masks a sequence's labels kept and dropped, and whether links were derived."""

    kept: int = 0
    dropped: int = 0
    derived_links: bool = False
    links: int = 0  # cells present in two successive frames under the same id
    outlined: int | None = None  # sparse labels: frames with outlines (the others have markers only)

    def __str__(self) -> str:
        how = "derived by overlap" if self.derived_links else "from man_track.txt"
        text = f"{self.kept} masks kept, {self.dropped} dropped, {self.links} frame-to-frame links {how}"
        if self.outlined is not None:
            text = f"outlines on {self.outlined} frames ({text}), markers elsewhere"
        return text


@dataclass
class TrackedSequence:
    """One training sequence in memory: normalised frames, label images with track ids, and parents."""

    name: str
    frames: list[np.ndarray]  # float16, normalised per frame
    labels: list[np.ndarray]  # uint16 track ids
    parents: dict[int, int]  # track id -> parent track id (0: none)
    report: LabelReport = field(default_factory=LabelReport)
    outlined: list[bool] | None = None  # frames whose labels are full outlines (None: every frame)
    val_fraction: float = VAL_FRACTION
    outline_ids: list[np.ndarray] | None = None  # per frame, the ids that are outlines (None: every labelled id)

    def __len__(self) -> int:
        return len(self.frames)

    def is_outlined(self, t: int) -> bool:
        return self.outlined is None or self.outlined[t]

    @property
    def n_train(self) -> int:
        """Frames before the held-out block (all of them train when every frame is outlined)."""
        return self.heldout[0]

    @property
    def heldout(self) -> tuple[int, int]:
        """The held-out block [first, end) of frame positions (see the module doc)."""
        marked = None if self.outlined is None else [t for t, o in enumerate(self.outlined) if o]
        return heldout_block(len(self), marked, self.val_fraction, self.name)

    def pair_times(self, split: str) -> list[int]:
        """Times t of the pairs (t-1, t) of a split: training pairs lie outside the held-out block; validation
        pairs have t in it and outlined."""
        first, end = self.heldout
        if split == "train":
            return [t for t in range(1, len(self)) if t < first or t - 1 >= end]
        return [t for t in range(max(first, 1), end) if self.is_outlined(t)]

    def train_positions(self) -> list[int]:
        """Frame positions outside the held-out block."""
        first, end = self.heldout
        return [t for t in range(len(self)) if t < first or t >= end]


def heldout_block(n_frames: int, outlined: list[int] | None, fraction: float, name: str = "") -> tuple[int, int]:
    """Held-out frame positions [first, end): from the first of the last ``fraction`` of the ``outlined``
    positions (None: every frame) to the last of them, or to the end when every frame is outlined."""
    if outlined is None or len(outlined) == n_frames:
        first = max(2, min(n_frames - 1, int(round(n_frames * (1.0 - fraction)))))
        return first, n_frames
    if len(outlined) < 2:
        raise EmbedTrackError(f"sequence {name}: outlines on {len(outlined)} frame(s); training and validation "
                              "need at least 2")
    first = outlined[-max(1, math.ceil(len(outlined) * fraction))]
    return max(first, 2), outlined[-1] + 1


def check_dataset(dataset_dir: Path, preset: Preset, derive_links: bool = False) -> list[str]:
    """Verify before training that the dataset holds what the preset needs; returns the sequence names."""
    names = find_sequences(dataset_dir)
    for name in names:
        paths = SequencePaths(dataset_dir, name)
        open_sequence(paths.raw)
        if preset.labels == "gt" and not paths.gt_tra.is_dir():
            raise EmbedTrackError(f"{paths.gt_tra}: preset {preset.name} trains on GT tracking masks, folder missing")
        if preset.labels == "sparse":
            for folder, what in ((paths.gt_tra, "GT tracking markers"), (paths.gt_seg, "GT outlines")):
                if not folder.is_dir():
                    raise EmbedTrackError(f"{folder}: preset {preset.name} trains on the {what}, folder missing")
        if preset.labels == "st":
            if not paths.st_seg.is_dir():
                raise EmbedTrackError(f"{paths.st_seg}: preset {preset.name} trains on silver truth, folder missing")
            if not paths.gt_tra.is_dir() and not derive_links:
                raise EmbedTrackError(
                    f"{paths.gt_tra}: preset {preset.name} needs the GT tracking markers to give silver-truth masks "
                    "their track ids; folder missing. Pass --derive-links to link ST masks by overlap instead.")
    return names


def load_dataset(dataset_dir: str | Path, preset: Preset, derive_links: bool = False) -> list[TrackedSequence]:
    """Load every sequence of a CTC training dataset with the labels the preset asks for."""
    dataset_dir = Path(dataset_dir)
    sequences = []
    for name in check_dataset(dataset_dir, preset, derive_links):
        seq = load_sequence(SequencePaths(dataset_dir, name), preset, derive_links)
        logger.info("%s/%s: %d frames, %s", dataset_dir.name, name, len(seq), seq.report)
        sequences.append(seq)
    return sequences


def load_sequence(paths: SequencePaths, preset: Preset, derive_links: bool = False) -> TrackedSequence:
    raw = open_sequence(paths.raw)
    frames = [preprocess.normalise(f, source=str(paths.raw)).astype(np.float16) for f in raw]
    if preset.labels == "sparse" and not derive_links:
        return load_sparse(paths, raw.indices, frames, preset)
    report = LabelReport()
    if preset.labels == "gt" or (preset.labels == "st" and paths.gt_tra.is_dir() and not derive_links):
        markers, tracks = _open_tracking_gt(paths.gt_tra, raw.indices)
        parents = {t.label: t.parent for t in tracks}
        marker_frames = [to_uint16(m, path) for m, path in zip(markers, markers.files)]  # never wrapped
        if preset.labels == "gt":
            labels = marker_frames
            report.kept = sum(len(label_set(m)) for m in labels)
        else:
            st = open_segmentation(paths.st_seg)
            _check_indices(raw.indices, st.indices, paths.st_seg)
            labels = []
            for st_mask, marker in zip(st, marker_frames):
                lab, kept, dropped = name_by_markers(st_mask, marker)
                labels.append(lab.astype(np.uint16))
                report.kept += kept
                report.dropped += dropped
    else:
        st = open_segmentation(paths.st_seg)
        _check_indices(raw.indices, st.indices, paths.st_seg)
        labels = link_by_overlap([m for m in st])
        parents = {}
        report.kept = sum(len(label_set(m)) for m in labels)
        report.derived_links = True
    report.links = count_links(labels)
    return TrackedSequence(paths.name, frames, labels, parents, report, val_fraction=preset.val_fraction)


def load_sparse(paths: SequencePaths, indices: list[int], frames: list[np.ndarray], preset: Preset) -> TrackedSequence:
    """Labels from TRA markers on every frame and SEG outlines where a frame has them (module doc)."""
    markers, tracks = _open_tracking_gt(paths.gt_tra, indices)
    seg = open_segmentation(paths.gt_seg)
    extra = sorted(set(seg.indices) - set(indices))
    if extra:
        raise CTCFormatError(f"{paths.gt_seg}: outlines of frame numbers {extra[:5]} that the sequence lacks")
    if seg.shape != markers.shape:
        raise CTCFormatError(f"{paths.gt_seg}: outlines of shape {seg.shape}, the markers have {markers.shape}")
    report, labels, outlined, outline_ids = LabelReport(), [], [], []
    for i, (index, frame) in enumerate(zip(indices, frames)):
        marker = to_uint16(markers.read(i), markers.files[i]).astype(np.int64)
        if marker.max(initial=0) >= sparse_labels.IGNORE:
            raise EmbedTrackError(f"{markers.files[i]}: track id {marker.max()} is reserved (must be below "
                                  f"{sparse_labels.IGNORE})")
        if index in seg.indices:
            outline = _outline(seg, index, marker, markers.files[i])
            lab, kept, dropped = sparse_labels.labels_from_outlines(outline, marker, frame, preset.sparse_fill,
                                                                    preset.ring_factor)
            report.kept, report.dropped = report.kept + kept, report.dropped + dropped
            outline_ids.append(np.setdiff1d(np.unique(lab[outline > 0]), [0, sparse_labels.IGNORE]))
        else:
            lab = sparse_labels.labels_from_markers(marker, frame, preset.sparse_fill, preset.ring_factor)
            outline_ids.append(np.zeros(0, dtype=np.int64))
        labels.append(lab)
        outlined.append(index in seg.indices)
    report.links = count_links(labels)
    report.outlined = sum(outlined)
    return TrackedSequence(paths.name, frames, labels, {t.label: t.parent for t in tracks}, report, outlined,
                           preset.val_fraction, outline_ids)


def count_links(labels: list[np.ndarray]) -> int:
    """Number of (cell, frame) pairs whose id is also present in the previous frame."""
    ids = [set(label_set(lab).tolist()) - {sparse_labels.IGNORE} for lab in labels]
    return sum(len(a & b) for a, b in zip(ids[1:], ids[:-1]))


def _open_tracking_gt(tra: Path, indices: list[int]) -> tuple[Sequence, list[Track]]:
    """The TRA markers (one per raw frame number of ``indices``) and tracks, refused as
    :func:`ctc.evaluate.evaluate` refuses them when they break the CTC rules (e.g. a label in the masks that
    ``man_track.txt`` lacks): training learns the links from them."""
    from ctc.validate import require_valid

    markers, tracks = open_tracking_gt(tra)
    _check_indices(indices, markers.indices, tra)
    for i, file in enumerate(markers.files):  # each file's own faults first, named by the file
        to_uint16(markers.read(i), file)
    require_valid(tra, TRACK_FILE_GT, "ground truth", "not used for training")
    return markers, tracks


def _outline(seg: Sequence, index: int, marker: np.ndarray, marker_file: Path) -> np.ndarray:
    """The outlines of frame number ``index``; an empty outline frame whose markers mark cells is refused."""
    outline = seg.read_index(index)
    if not outline.any() and marker.any():
        raise CTCFormatError(f"{seg.files[seg.indices.index(index)]}: holds no outlines, but {marker_file.name} "
                             f"marks {len(label_set(marker))} cells; outline them or remove the empty frame")
    return outline


def _check_indices(raw: list[int], other: list[int], folder: Path) -> None:
    if raw != other:
        missing, extra = sorted(set(raw) - set(other)), sorted(set(other) - set(raw))
        problems = ([f"missing frame numbers {missing[:5]}"] if missing else []) + (
            [f"frame numbers {extra[:5]} that the raw sequence lacks"] if extra else [])
        raise CTCFormatError(f"{folder}: needs one mask per raw frame; {'; '.join(problems)}")


def link_by_overlap(masks: list[np.ndarray], min_overlap: float = 0.5) -> list[np.ndarray]:
    """Relabel per-frame masks with track ids by mutual best overlap between successive frames."""
    out: list[np.ndarray] = []
    next_id = 1
    prev: np.ndarray | None = None
    for mask in masks:
        values, compact = unique_inverse(mask)  # look-ups by position, never by label value
        lut = np.zeros(values.size, dtype=np.int64)
        if prev is not None and np.count_nonzero(values):
            table = overlaps(mask, prev)
            for c, p, score in mutual_best(table, table.of_smaller()):
                if score >= min_overlap:
                    lut[np.searchsorted(values, c)] = p
        for at in np.flatnonzero(values):
            if lut[at] == 0:
                lut[at] = next_id
                next_id += 1
            else:
                next_id = max(next_id, int(lut[at]) + 1)
        if next_id > np.iinfo(np.uint16).max:
            raise EmbedTrackError("more than 65535 tracks derived; cannot store as uint16")
        relabelled = lut[compact]
        out.append(relabelled.astype(np.uint16))
        prev = relabelled
    return out


def write_linked_gt(masks: list[np.ndarray], indices: list[int], ndigits: int, gt_dir: Path) -> Path:
    """Write a CTC ground-truth folder from per-frame masks: ``SEG`` holds the masks, ``TRA`` the masks linked
    by overlap (:func:`link_by_overlap`) with their ``man_track.txt``. py-ctcmetrics wants a TRA folder beside
    SEG even to score SEG alone, e.g. against silver truth that has no tracking ground truth."""
    (gt_dir / "SEG").mkdir(parents=True)
    (gt_dir / "TRA").mkdir()
    spans: dict[int, list[int]] = {}
    for index, mask, tracked in zip(indices, masks, link_by_overlap(masks)):
        write_tiff(gt_dir / "SEG" / frame_name("man_seg", index, ndigits), mask)
        write_tiff(gt_dir / "TRA" / frame_name("man_track", index, ndigits), tracked)
        for label in label_set(tracked).tolist():
            spans.setdefault(label, []).append(index)
    write_track_file(gt_dir / "TRA" / TRACK_FILE_GT,
                     [Track(k, min(v), max(v), 0) for k, v in sorted(spans.items())])
    return gt_dir


def mask_areas(sequences: list[TrackedSequence]) -> np.ndarray:
    """Areas of all outlined masks in the training part of the sequences (markers are not outlines)."""
    areas = [_frame_areas(s, t) for s in sequences for t in s.train_positions() if s.is_outlined(t)]
    flat = np.concatenate(areas) if areas else np.zeros(0, dtype=np.int64)
    return flat[flat > 0]


def _frame_areas(seq: TrackedSequence, t: int) -> np.ndarray:
    counts = np.bincount(seq.labels[t].ravel(), minlength=sparse_labels.IGNORE)
    return counts[1:sparse_labels.IGNORE] if seq.outline_ids is None else counts[seq.outline_ids[t]]


def min_mask_size(sequences: list[TrackedSequence]) -> int:
    """Half the 1st percentile of the training mask areas (paper §3.3)."""
    areas = mask_areas(sequences)
    if len(areas) == 0:
        raise EmbedTrackError("the training frames hold no outlined masks (markers are not outlines); the "
                              "held-out frames are not used for training")
    return max(1, int(np.percentile(areas, 1) / 2))


def links_for(labels_t: np.ndarray, labels_prev: np.ndarray, parents: dict[int, int]) -> np.ndarray:
    """Rows (id at t, id at t-1) for cells at t whose own track or mother is present at t-1. [K, 2] int64."""
    ids_p = set(label_set(labels_prev).tolist()) - {sparse_labels.IGNORE}
    rows = []
    for i in label_set(labels_t).tolist():
        if i == sparse_labels.IGNORE:
            continue
        if i in ids_p:
            rows.append((i, i))
        elif parents.get(i, 0) in ids_p:
            rows.append((i, parents[i]))
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)

