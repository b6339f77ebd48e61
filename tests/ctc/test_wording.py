"""Counts in messages read as English: one division, two divisions (ctc.wording and the summaries that use it)."""

from __future__ import annotations

from pathlib import Path

from ctc.wording import counted
from embedtrack.io.pipeline import RunReport


def test_counted_is_singular_for_exactly_one() -> None:
    assert [counted(n, "division") for n in (0, 1, 2)] == ["0 divisions", "1 division", "2 divisions"]
    assert counted(1, "worker") == "1 worker" and counted(3, "process", "processes") == "3 processes"


def test_run_summary_counts_in_the_singular() -> None:
    text = RunReport(Path("r"), frames=1, tracks=1, divisions=1, device="cpu", tta=False).summary()
    assert text.startswith("1 frame, 1 track (1 division) -> r")
    text = RunReport(Path("r"), frames=2, tracks=3, divisions=0, device="cpu", tta=False).summary()
    assert text.startswith("2 frames, 3 tracks (0 divisions) -> r")
