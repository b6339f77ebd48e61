"""A block of frames of a CTC training sequence as a dataset of its own, with its ground truth cut to match.

Used to score a model on the frames it was never trained on (the held-out block of :mod:`embedtrack.training.data`):
the raw frames ``first .. end-1`` of ``<DATASET>/<SEQ>`` become ``<OUT>/<SEQ>/t000 …``, renumbered from 0, the
TRA markers and the SEG outlines of those frames follow them, and ``man_track.txt`` keeps each track's part
inside the block (a parent that ends before the block is dropped: its daughter starts a lineage there).
The copy is written beside ``<OUT>`` and renamed into place when complete; an existing ``<OUT>`` is refused.
"""

from __future__ import annotations

from pathlib import Path

from ctc.errors import CTCFormatError, CTCResultExistsError
from ctc.guard import CTC_DATASET
from ctc.io import (TRACK_FILE_GT, Sequence, SequencePaths, default_ndigits, frame_name, open_segmentation, open_sequence,
                    open_tracking_gt, write_track_file)
from ctc.lineage import Track
from ctc.writer import copy_into, staged_folder


def cut_tracks(tracks: list[Track], first: int, end: int) -> list[Track]:
    """The tracks present in frames [first, end), shifted so ``first`` becomes frame 0."""
    inside = {t.label: t for t in tracks if t.begin < end and t.end >= first}
    out = []
    for t in sorted(inside.values(), key=lambda t: t.label):
        parent = t.parent if t.parent in inside else 0
        out.append(Track(t.label, max(t.begin, first) - first, min(t.end, end - 1) - first, parent))
    return out


def write_excerpt(dataset_dir: str | Path, sequence: str, first: int, end: int, out_dir: str | Path) -> Path:
    """Write frames [first, end) (frame numbers) of ``dataset_dir/sequence`` and its GT as ``out_dir``."""
    paths, out_dir = SequencePaths(Path(dataset_dir), sequence), Path(out_dir)
    if out_dir.exists():
        raise CTCResultExistsError(f"{out_dir}: exists; choose a new folder for the excerpt")
    raw = open_sequence(paths.raw)
    wanted = [i for i in raw.indices if first <= i < end]
    if len(wanted) < 2:
        raise CTCFormatError(f"{paths.raw}: frames {first}..{end - 1} hold {len(wanted)} frame(s); need 2")
    markers, tracks = open_tracking_gt(paths.gt_tra)
    seg = open_segmentation(paths.gt_seg) if paths.gt_seg.is_dir() else None
    with staged_folder(out_dir, CTC_DATASET, inputs=[dataset_dir]) as staging:
        _copy_frames(raw, markers, seg, wanted, first, staging.path, sequence)
        write_track_file(staging / f"{sequence}_GT" / "TRA" / TRACK_FILE_GT, cut_tracks(tracks, first, end))
    return out_dir


def _copy_frames(raw: Sequence, markers: Sequence, seg: Sequence | None, wanted: list[int], first: int, tmp: Path,
                 sequence: str) -> None:
    digits = default_ndigits(len(wanted))
    parts = [(raw, tmp / sequence, "t"), (markers, tmp / f"{sequence}_GT" / "TRA", "man_track")]
    if seg is not None:
        parts.append((seg, tmp / f"{sequence}_GT" / "SEG", "man_seg"))
    for source, folder, prefix in parts:
        folder.mkdir(parents=True)
        for index in wanted:
            if index in source.indices:
                src = source.files[source.indices.index(index)]
                copy_into(src, folder / frame_name(prefix, index - first, digits))
