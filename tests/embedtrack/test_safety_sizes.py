"""Sizes and values that would cost memory, disk or time before anything useful happens are refused up front:
synthetic frame sizes, model architecture numbers, announced download sizes, unreadable config files."""

from __future__ import annotations

from pathlib import Path

from tests.cli_result import invoke, refused


def test_synth_refuses_a_sequence_larger_than_the_memory(tmp_path: Path) -> None:
    result = invoke("synth", tmp_path / "DS", "--size", "11000", "11000", "--frames", "10000000")
    refused(result, "--frames 10000000 --size 11000 11000: a synthetic sequence is built in memory")
    assert list(tmp_path.iterdir()) == []
