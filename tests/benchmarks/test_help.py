"""Every benchmark script still starts: ``benchmarks/<script>.py --help`` exits 0 and prints its usage.

The scripts import the package at the top, so this catches a benchmark left behind by a module's move or rename.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPTS = sorted((REPO / "benchmarks").glob("*.py"))


def test_there_are_benchmarks() -> None:
    assert len(SCRIPTS) >= 10


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_benchmark_answers_help(script: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=300,
                          cwd=REPO, env=env)
    assert done.returncode == 0, f"{script.name} --help: {done.stderr[-2000:]}"
    assert "usage" in done.stdout.lower(), f"{script.name} --help printed no usage: {done.stdout[:500]}"
