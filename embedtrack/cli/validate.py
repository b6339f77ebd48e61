"""`embedtrack validate RES_DIR`: check a CTC result (or GT/TRA) folder against the CTC consistency rules."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from embedtrack.cli._common import handle_errors


@click.command("validate")
@click.argument("res_dir", type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Also fail on warnings (empty frames, masks that are not uint16).")
@click.option("--max-lines", type=click.IntRange(min=1), default=200, show_default=True,
              help="Print at most this many violations.")
@handle_errors
def command(res_dir: Path, strict: bool, max_lines: int) -> None:
    """Check RES_DIR (maskNNN.tif + res_track.txt, or a GT/TRA folder) against every CTC rule.

    Each violation is printed with its frame and label. Exit status 1 when the result is invalid (or, with
    --strict, when there is any warning). Warnings are deviations py-ctcmetrics accepts: empty frames and
    masks that are not uint16.
    """
    from ctc.rules import ERROR
    from ctc.validate import validate_result

    violations = validate_result(res_dir)
    errors = [v for v in violations if v.severity == ERROR]
    warnings = len(violations) - len(errors)
    for violation in violations[:max_lines]:
        click.echo(str(violation))
    if len(violations) > max_lines:
        click.echo(f"... and {len(violations) - max_lines} more")
    if errors or (strict and warnings):
        click.echo(f"{res_dir}: INVALID ({len(errors)} error(s), {warnings} warning(s))", err=True)
        sys.exit(1)
    note = f" ({warnings} warning(s))" if warnings else ""
    click.echo(f"{res_dir}: OK, valid CTC result{note}")
