"""Invoking the command line in-process, and the shape of a refusal: exit 1, one error line, no traceback."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result


def invoke(*args: str | Path) -> Result:
    from embedtrack.cli import main

    return CliRunner().invoke(main, [str(a) for a in args])


def refused(result: Result, *needles: str) -> None:
    """The command failed cleanly (exit 1, no traceback) and its message holds every one of ``needles``."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output
