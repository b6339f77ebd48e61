"""CTC track files (``man_track.txt``, ``res_track.txt``): one ``L B E P`` line per track.

Reading is bounded before it costs memory: a file over :data:`MAX_TRACK_FILE_BYTES`, a label or parent above
:data:`~ctc.lineage.MAX_LABEL` (the CTC's 16-bit labels) or a frame number above :data:`MAX_FRAME` (4 digits) is
one :class:`~ctc.errors.CTCFormatError` naming the file and the line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

from ctc.errors import CTCFormatError
from ctc.lineage import MAX_LABEL, Track
from ctc.tiff import require_regular_file
from ctc.writer import put_bytes

#: Largest frame number: CTC frame names have at most 4 digits.
MAX_FRAME = 9999
#: Largest track file read: 65,535 tracks of ``L B E P`` (at most 5+4+4+5 digits) fit in 1.3 MB; the rest is
#: room for blank lines and spacing.
MAX_TRACK_FILE_BYTES = 16 * 2**20
# one track file line: four ASCII integers separated by spaces or tabs (str.isdigit would accept '²' or '٣')
TRACK_LINE = re.compile(r"[ \t]*([0-9]+)[ \t]+([0-9]+)[ \t]+([0-9]+)[ \t]+([0-9]+)[ \t\r]*")


def read_track_file(path: str | Path) -> list[Track]:
    """Read ``man_track.txt`` / ``res_track.txt``: one ``L B E P`` line per track (blank lines are skipped);
    within the limits of the module docstring."""
    path = Path(path)
    require_regular_file(path, "track file")
    try:
        if path.stat().st_size > MAX_TRACK_FILE_BYTES:
            raise CTCFormatError(f"{path}: track file of {path.stat().st_size:,} bytes, more than the "
                                 f"{MAX_TRACK_FILE_BYTES:,} a CTC track file of {MAX_LABEL:,} tracks can need")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CTCFormatError(f"{path}: cannot read track file ({err})") from err
    tracks: list[Track] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip(" \t\r"):
            continue
        match = TRACK_LINE.fullmatch(line)
        if match is None:
            raise CTCFormatError(
                f"{path}: line {number} is not four non-negative integers 'L B E P' (ASCII digits separated by "
                f"spaces): {line.strip()!r}")
        tracks.append(_track(match.groups(), path, number))
    return tracks


_TRACK_FIELDS = (("label", MAX_LABEL), ("begin frame", MAX_FRAME), ("end frame", MAX_FRAME),
                 ("parent", MAX_LABEL))


def _track(groups: tuple[str, ...], path: Path, number: int) -> Track:
    """The track of one ``L B E P`` line whose numbers are within the CTC's ranges."""
    for text, (name, limit) in zip(groups, _TRACK_FIELDS):
        digits = text.lstrip("0")
        if len(digits) > len(str(limit)) or int(digits or 0) > limit:  # no huge int is ever built
            shown = text if len(text) <= 24 else f"{text[:8]}... ({len(text)} digits)"
            raise CTCFormatError(f"{path}: line {number}: {name} {shown} is above {limit} (CTC track files hold "
                                 f"labels 0 to {MAX_LABEL} and frame numbers 0 to {MAX_FRAME})")
    return Track(*(int(g) for g in groups))


def write_track_file(path: str | Path, tracks: Iterable[Track]) -> None:
    """Write tracks as ``L B E P`` lines, sorted by label."""
    lines = [f"{t.label} {t.begin} {t.end} {t.parent}\n" for t in sorted(tracks, key=lambda t: t.label)]
    put_bytes(Path(path), "".join(lines))
