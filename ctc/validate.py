"""The CTC consistency rules for a result folder (``maskNNN.tif`` + ``res_track.txt``).

The lineage rules themselves are :mod:`ctc.rules`; this module reads the folder and adds the file-format rules.
Errors make a result invalid. Their verdict agrees with py-ctcmetrics' ``validate_sequence`` on the rules that
it checks (the lineage rules). On file-format rules py-ctcmetrics does not check (equal frame shapes, contiguous
file numbers, tracks declared beyond the last mask, unreadable files) this module is stricter.

Warnings are CTC format deviations that py-ctcmetrics accepts, so they do not make the result invalid:

* an empty frame (no cell in the mask) - py-ctcmetrics only warns, but some versions of the CTC evaluation tools
  stop on an empty result frame;
* integer masks that are not uint16 (the CTC asks for 16-bit label images).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ctc.errors import CTCError, CTCFormatError
from ctc.io import (TRACK_FILE_GT, TRACK_FILE_RES, discover_frames, frame_name, read_tiff, read_track_file,
                    tiff_header)
from ctc.labels import label_set
from ctc.lineage import Track
from ctc.progress import progress
from ctc.rules import WARNING, Violation, check_lineage, errors_only, sort_violations

logger = logging.getLogger(__name__)


def validate_result(res_dir: str | Path) -> list[Violation]:
    """Check a result folder against every CTC rule; an empty list means valid without warnings.

    A ground-truth ``<SEQ>_GT/TRA`` folder (``man_trackNNN.tif`` + ``man_track.txt``, no masks) is checked
    by the same rules.

    File-level problems (no masks, gaps in file numbers, unreadable files, shapes, dtypes, a missing or
    malformed ``res_track.txt``) are reported as violations too, not raised. Reads every mask once.
    """
    res_dir = Path(res_dir)
    out: list[Violation] = []
    prefix, track_file = "mask", TRACK_FILE_RES
    if not any(res_dir.glob("mask*.tif")) and os.path.lexists(res_dir / TRACK_FILE_GT):  # a FIFO too: named later
        prefix, track_file = "man_track", TRACK_FILE_GT  # a ground-truth TRA folder follows the same rules
    try:
        indices, files, ndigits = discover_frames(res_dir, prefix)
    except CTCFormatError as err:
        return [Violation(None, None, str(err))]
    for missing in sorted(set(range(indices[0], indices[-1] + 1)) - set(indices)):
        out.append(Violation(missing, None, f"{frame_name(prefix, missing, ndigits)} is missing "
                                            "(file numbers must be contiguous)"))
    if indices[0] != 0:
        out.append(Violation(indices[0], None, "first mask is not mask000: frame numbers must match the input "
                                               "frames", WARNING))
    try:
        tracks: list[Track] | None = read_track_file(res_dir / track_file)
    except CTCFormatError as err:
        out.append(Violation(None, None, str(err)))
        tracks = None
    frame_labels: dict[int, np.ndarray] = {}
    shape: tuple[int, ...] | None = None
    for index, file in progress(list(zip(indices, files)), desc="validate", unit="frame", leave=False,
                             disable=None):
        try:
            tiff_header(file)
            labels = read_tiff(file)
        except CTCFormatError as err:
            out.append(Violation(index, None, str(err)))
            continue
        if not np.issubdtype(labels.dtype, np.integer):
            if not np.issubdtype(labels.dtype, np.floating) or not np.array_equal(labels, np.round(labels)):
                out.append(Violation(index, None, f"{file.name} has dtype {labels.dtype} with non-integer "
                                                  "values, CTC masks are uint16 label images"))
                continue
            out.append(Violation(index, None, f"{file.name} has dtype {labels.dtype}, CTC masks are uint16",
                                 WARNING))
            labels = labels.astype(np.int64)
        elif labels.dtype != np.uint16:
            out.append(Violation(index, None, f"{file.name} has dtype {labels.dtype}, CTC masks are uint16",
                                 WARNING))
        if shape is None:
            shape = labels.shape
        elif labels.shape != shape:
            out.append(Violation(index, None, f"{file.name} has shape {labels.shape}, "
                                              f"{files[0].name} has {shape}"))
        frame_labels[index] = label_set(labels)
    if tracks is not None:
        out.extend(check_lineage(frame_labels, tracks, frames=indices, track_file=track_file))
    sort_violations(out)
    logger.debug("%s: %d violation(s)", res_dir, len(out))
    return out


def require_valid(folder: str | Path, track_file: str = TRACK_FILE_RES, role: str = "result",
                  refused: str = "not scored") -> None:
    """Raise :class:`CTCError` naming ``folder/track_file`` and its first violations when the ``role`` folder
    (``result`` or ``ground truth``) breaks a CTC rule of :func:`validate_result`; ``refused`` says what the
    command did not do (``not scored``, ``not exported``)."""
    folder = Path(folder)
    problems = errors_only(validate_result(folder))
    if problems:
        shown = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise CTCError(f"{folder / track_file}: invalid CTC {role}, {refused}: {shown}{more}")
