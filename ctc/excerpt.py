"""A block of frames of a CTC training sequence as a dataset of its own, with its ground truth cut to match.

Used to score a model on the frames it was never trained on (the held-out block of :mod:`embedtrack.data`):
the raw frames ``first .. end-1`` of ``<DATASET>/<SEQ>`` become ``<OUT>/<SEQ>/t000 …``, renumbered from 0, the
TRA markers and the SEG outlines of those frames follow them, and ``man_track.txt`` keeps each track's part
inside the block (a parent that ends before the block is dropped: its daughter starts a lineage there).
The copy is written beside ``<OUT>`` and renamed into place when complete; an existing ``<OUT>`` is refused.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ctc.errors import CTCFormatError, CTCResultExistsError
from ctc.fsutil import move_into_place, parents_made, temp_dir_beside
from ctc.io import (TRACK_FILE_GT, Sequence, SequencePaths, default_ndigits, frame_name, open_segmentation, open_sequence,
                    open_tracking_gt, write_track_file)
from ctc.lineage import Track


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
    with parents_made(out_dir):  # removed again when the excerpt fails
        tmp = temp_dir_beside(out_dir, "tmp")
        try:
            _copy_frames(raw, markers, seg, wanted, first, tmp, sequence)
            write_track_file(tmp / f"{sequence}_GT" / "TRA" / TRACK_FILE_GT, cut_tracks(tracks, first, end))
            move_into_place(tmp, out_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
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
                shutil.copyfile(src, folder / frame_name(prefix, index - first, digits))
