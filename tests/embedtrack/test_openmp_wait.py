"""The Python API chooses OpenMP's wait policy as the command does, or warns once with what to set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TRACK = "from embedtrack import Tracker; Tracker.from_model({model!r}, device='cpu'); " \
        "Tracker.from_model({model!r}, device='cpu'); import os; print(os.environ['OMP_WAIT_POLICY'])"


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**clean, "OMP_NUM_THREADS": "1", **env}, cwd=Path(__file__).resolve().parents[2])


@pytest.mark.parametrize("first,env,policy,warns", [
    ("", {}, "PASSIVE", False),  # embedtrack first: the policy is set before torch starts
    ("import torch; ", {}, "PASSIVE", True),  # too late for OpenMP: one warning saying what to set
    ("import torch; ", {"OMP_WAIT_POLICY": "ACTIVE"}, "ACTIVE", False),  # the user's choice is kept
])
def test_api_sets_the_wait_policy_or_warns_once(tiny_model: Path, first: str, env: dict[str, str], policy: str,
                                                 warns: bool) -> None:
    done = _python(first + TRACK.format(model=str(tiny_model)), **env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [policy]
    assert done.stderr.count("set OMP_WAIT_POLICY=PASSIVE in the environment") == (1 if warns else 0), done.stderr
