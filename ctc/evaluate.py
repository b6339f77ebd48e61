"""Score a CTC result against ground truth with py-ctcmetrics (the measures are not re-implemented here).

py-ctcmetrics prints progress to stdout and raises bare assertions on bad input; this wrapper checks the
folders first, silences its stdout (logged at debug level), turns its warnings into log records and its
failures into one :class:`~ctc.errors.CTCError`.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import numbers
import os
import re
import warnings
from pathlib import Path
from typing import Iterable

from ctc.errors import CTCError, CTCFormatError
from ctc.io import TRACK_FILE_GT, TRACK_FILE_RES, discover_frames, read_track_file, tiff_header
from ctc.validate import require_valid

logger = logging.getLogger(__name__)

DEFAULT_METRICS: tuple[str, ...] = ("SEG", "TRA", "DET")
#: Metrics py-ctcmetrics computes on request; ``BC(i)`` with an integer i is accepted as well.
KNOWN_METRICS: tuple[str, ...] = ("SEG", "TRA", "DET", "LNK", "CT", "TF", "BC", "CCA", "CHOTA", "HOTA", "MOTA",
                                  "IDF1", "MTML", "FAF", "BIO", "OP_CTB", "OP_CSB", "OP_CLB", "Valid")
_BC = re.compile(r"^BC\((.*)\)$")
MAX_BC = 99  # BC(i): i frames of tolerance; py-ctcmetrics' memory grows with i
_VALID_GROUND_TRUTH: set[tuple[str, tuple[tuple[str, int, int], ...]]] = set()  # TRA folders found valid, by state


def parse_metrics(metrics: str | Iterable[str]) -> list[str]:
    """Normalise a metric list (``"SEG,TRA"`` or an iterable); names are case-insensitive except ``Valid``."""
    names = metrics.split(",") if isinstance(metrics, str) else list(metrics)
    canonical = {m.upper(): m for m in KNOWN_METRICS}
    out: list[str] = []
    for raw in names:
        name = raw.strip()
        if not name:
            continue
        upper = name.upper()
        if _BC.match(upper):
            name = _bc_name(upper, raw)
        elif upper in canonical:
            name = canonical[upper]
        else:
            raise CTCError(f"unknown metric {raw.strip()!r}; known: {', '.join(KNOWN_METRICS)}, BC(i)")
        if name not in out:
            out.append(name)
    if not out:
        raise CTCError("no metric requested")
    return out


def _bc_name(upper: str, raw: str) -> str:
    """``BC(i)`` with i a whole number 0..MAX_BC in ASCII digits; one error otherwise."""
    match = re.fullmatch(r"BC\(([0-9]{1,2})\)", upper, re.ASCII)
    if match is None:
        raise CTCError(f"metric {raw.strip()!r}: BC(i) takes a whole number i from 0 to {MAX_BC}")
    return f"BC({int(match.group(1))})"


# py-ctcmetrics computes some metrics only from intermediate results of others
_NEEDS: dict[str, tuple[str, ...]] = {
    "LNK": ("DET",), "OP_CTB": ("SEG", "TRA"), "OP_CSB": ("SEG", "DET"),
    "BIO": ("CT", "BC", "CCA", "TF"), "OP_CLB": ("CT", "BC", "CCA", "TF", "LNK", "DET"),
}


def with_dependencies(metrics: list[str]) -> list[str]:
    """``metrics`` plus the metrics py-ctcmetrics needs to compute them (e.g. LNK needs DET or TRA)."""
    out = list(metrics)
    for name in metrics:
        needs = _NEEDS.get(name, ())
        if name == "LNK" and "TRA" in out:
            continue
        out += [n for n in needs if n not in out]
    return out


def _count(folder: Path, prefix: str) -> int:
    try:
        return len(discover_frames(folder, prefix)[0])
    except CTCFormatError:
        return 0


def _check_folders(res_dir: Path, gt_dir: Path, metrics: list[str]) -> None:
    from ctc.tiff import require_regular_file  # a FIFO, folder or broken link is named as such, not "not found"

    if not res_dir.is_dir():
        raise CTCFormatError(f"{res_dir}: result folder not found")
    if not gt_dir.is_dir():
        raise CTCFormatError(f"{gt_dir}: ground-truth folder not found")
    require_regular_file(res_dir / TRACK_FILE_RES, "track file")
    n_res = _count(res_dir, "mask")
    if metrics != ["SEG"]:
        tra = gt_dir / "TRA"
        require_regular_file(tra / TRACK_FILE_GT, "ground-truth track file")
        read_track_file(tra / TRACK_FILE_GT)  # a malformed line is one error naming it, not an IndexError later
        n_gt = _count(tra, "man_track")
        if n_gt == 0:
            raise CTCFormatError(f"{tra}: no man_trackNNN.tif files")
        if n_gt != n_res:
            raise CTCFormatError(f"{res_dir}: {n_res} result masks, but the ground truth {tra} has {n_gt} frames")
    if "SEG" in metrics and _count(gt_dir / "SEG", "man_seg") == 0:
        raise CTCFormatError(f"{gt_dir / 'SEG'}: no man_segNNN.tif files, SEG cannot be computed")


def _check_files(res_dir: Path, gt_dir: Path, metrics: list[str]) -> None:
    """Every file py-ctcmetrics will read, within the size limits (it reads them without any): each ``.tif``
    of the result, of ``TRA`` and of ``SEG`` through the TIFF header checks, ``man_track.txt`` in full."""
    folders = [res_dir] + ([gt_dir / "TRA"] if metrics != ["SEG"] else []) + ([gt_dir / "SEG"] if "SEG" in metrics
                                                                              else [])
    for folder in folders:
        for path in sorted(folder.glob("*.tif")):
            tiff_header(path)
    if (gt_dir / "TRA" / TRACK_FILE_GT).exists():
        read_track_file(gt_dir / "TRA" / TRACK_FILE_GT)


def _require_valid(folder: Path, track_file: str, role: str) -> None:
    """Refuse a ``role`` folder (``result`` or ``ground truth``) that breaks the CTC rules (:func:`require_valid`)."""
    require_valid(folder, track_file, role, "not scored")


def _require_valid_ground_truth(tra: Path) -> None:
    """:func:`_require_valid` for a ``TRA`` folder, once per state of its files (calibration scores many results
    against the same ground truth)."""
    with os.scandir(tra) as entries:
        stats = [(e.name, e.stat()) for e in entries]
    state = (os.path.realpath(tra), tuple(sorted((name, st.st_mtime_ns, st.st_size) for name, st in stats)))
    if state not in _VALID_GROUND_TRUTH:
        _require_valid(tra, TRACK_FILE_GT, "ground truth")
        _VALID_GROUND_TRUTH.add(state)


def evaluate(res_dir: str | Path, gt_dir: str | Path, metrics: Iterable[str] = DEFAULT_METRICS,
             threads: int = 1) -> dict[str, float]:
    """Score result folder ``res_dir`` (``<SEQ>_RES``) against ``gt_dir`` (``<SEQ>_GT``) with py-ctcmetrics.

    Returns the requested metrics first, then the extra figures py-ctcmetrics reports with them (AOGM, ...).
    An invalid result or tracking ground truth ``gt_dir/TRA`` (the same rules, see
    :func:`ctc.validate.validate_result`) raises :class:`CTCError` naming its track file, which side is wrong
    and its first violations. ``threads`` is passed to py-ctcmetrics (0 = all CPUs, using a process pool).
    """
    from ctc_metrics.scripts.evaluate import evaluate_sequence  # imported on use: it pulls in scikit-learn

    res_dir, gt_dir = Path(res_dir), Path(gt_dir)
    wanted = parse_metrics(metrics)
    needed = with_dependencies(wanted)
    _check_folders(res_dir, gt_dir, needed)
    _check_files(res_dir, gt_dir, needed)
    if needed != ["SEG"]:  # the tracking ground truth follows the rules a result follows
        _require_valid_ground_truth(gt_dir / "TRA")
    _require_valid(res_dir, TRACK_FILE_RES, "result")
    captured = io.StringIO()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(captured):
        warnings.simplefilter("always")
        try:
            raw = evaluate_sequence(str(res_dir), str(gt_dir), needed, threads)
        except Exception as err:  # py-ctcmetrics fails with bare assertions / index errors
            raise CTCError(f"{res_dir}: py-ctcmetrics could not score it against {gt_dir}: "
                           f"{type(err).__name__}: {err}") from err
    logger.debug("py-ctcmetrics output: %s", captured.getvalue().strip())
    for message in dict.fromkeys(str(w.message) for w in caught):
        logger.warning("py-ctcmetrics: %s", message)
    if raw.get("Valid") == 0:
        raise CTCError(f"{res_dir}: py-ctcmetrics judged the result invalid; run 'embedtrack validate'")
    scores: dict[str, float] = {}
    for name in wanted + [k for k in raw if k not in wanted]:
        value = raw.get(name)
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            scores[name] = float(value)
        elif value is None and name in wanted:
            scores[name] = math.nan
    return scores
