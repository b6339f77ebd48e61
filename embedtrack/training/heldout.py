"""The held-out frames of a CTC training dataset on disk, and the same frames as a dataset of their own.

Training holds out one block of frames per sequence (:func:`embedtrack.training.data.heldout_block`, by the dataset's
preset); scoring a model on exactly those frames needs them as a CTC dataset with their ground truth, which
:func:`write_heldout` makes (:func:`ctc.excerpt.write_excerpt`; for silver truth without tracking ground truth,
the ST masks linked by overlap serve as ground truth, so that only SEG is meaningful).

    python -m embedtrack.training.heldout DATASET_DIR SEQ OUT_DIR   # writes OUT_DIR/SEQ and OUT_DIR/SEQ_GT
"""

from __future__ import annotations

import sys
from pathlib import Path

from ctc.errors import CTCResultExistsError
from ctc.excerpt import write_excerpt
from ctc.guard import CTC_DATASET
from ctc.io import SequencePaths, frame_name, open_segmentation, open_sequence
from ctc.writer import copy_into, staged_folder
from embedtrack.training.data import heldout_block, write_linked_gt
from embedtrack.models.presets import get_preset


def heldout_frames(dataset_dir: str | Path, sequence: str, preset: str | None = None) -> tuple[int, int]:
    """Frame numbers [first, end) of the held-out block (preset: the dataset folder's name by default)."""
    dataset_dir = Path(dataset_dir)
    paths = SequencePaths(dataset_dir, sequence)
    raw = open_sequence(paths.raw)
    chosen = get_preset(preset or dataset_dir.name)
    outlined = None
    if chosen.labels == "sparse":
        seg = set(open_segmentation(paths.gt_seg).indices)
        outlined = [p for p, i in enumerate(raw.indices) if i in seg]
    first, end = heldout_block(len(raw), outlined, chosen.val_fraction, sequence)
    return raw.indices[first], raw.indices[end - 1] + 1


def write_heldout(dataset_dir: str | Path, sequence: str, out_dir: str | Path) -> Path:
    """The held-out block of ``dataset_dir/sequence`` as the dataset ``out_dir`` (frames renumbered from 0)."""
    dataset_dir, out_dir = Path(dataset_dir), Path(out_dir)
    first, end = heldout_frames(dataset_dir, sequence)
    paths = SequencePaths(dataset_dir, sequence)
    if paths.gt_tra.is_dir():
        return write_excerpt(dataset_dir, sequence, first, end, out_dir)
    raw, st = open_sequence(paths.raw), open_segmentation(paths.st_seg)
    indices = [i for i in raw.indices if first <= i < end]
    if out_dir.exists() or out_dir.is_symlink():
        raise CTCResultExistsError(f"{out_dir}: exists; choose a new folder for the held-out block")
    with staged_folder(out_dir, CTC_DATASET, inputs=[dataset_dir]) as staging:
        (staging / sequence).mkdir()
        for k, index in enumerate(indices):
            copy_into(raw.files[raw.indices.index(index)], staging / sequence / frame_name("t", k, 3))
        write_linked_gt([st.read_index(i) for i in indices], list(range(len(indices))), 3,
                        staging / f"{sequence}_GT")
    return out_dir


def main(argv: list[str]) -> int:
    """The command line of the module docstring: 0 when written, 1 with one ``Error:`` line naming what is
    wrong (e.g. a dataset folder whose name is not a preset), 2 for a wrong argument count."""
    from ctc.errors import CTCError, escape_name
    from embedtrack.errors import ConfigError, EmbedTrackError

    if len(argv) != 3:
        print(__doc__.strip().splitlines()[-1].strip(), file=sys.stderr)
        return 2
    try:
        first, end = heldout_frames(argv[0], argv[1])
        out = write_heldout(*argv)
    except (CTCError, EmbedTrackError, OSError) as err:
        print(f"Error: {escape_name(f'{argv[0]}: {err}' if isinstance(err, ConfigError) else err)}", file=sys.stderr)
        return 1
    print(f"{out}: frames {first}..{end - 1} of {Path(argv[0]).name}/{argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
