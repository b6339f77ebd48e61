"""OpenMP's wait policy: ``OMP_WAIT_POLICY=PASSIVE`` unless the user chose one, for the command and the Python
API alike (``import embedtrack`` imports this module first thing).

Idle OpenMP threads then sleep instead of spinning, which keeps the tracker fast when other work shares the
cores. OpenMP reads the variable once, when torch starts; when torch was imported before embedtrack it is too
late, and :func:`warn_if_spinning` (called when a tracker or training starts on the CPU) warns once.
"""

from __future__ import annotations

import os
import sys
import warnings

ADVICE = ("torch was imported before embedtrack, so idle OpenMP threads spin instead of sleeping, which makes "
          "tracking several times slower when other work shares the cores; set OMP_WAIT_POLICY=PASSIVE in the "
          "environment before Python starts, or import embedtrack before torch")


def quiet_openmp_waiting() -> str:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless the user chose a policy; returns what the policy will be: "user"
    (set by the user), "passive" (set here before torch started) or "spinning" (torch started already)."""
    if os.environ.get("OMP_WAIT_POLICY"):
        return "user"
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return "spinning" if "torch" in sys.modules else "passive"


#: The policy chosen when embedtrack was first imported (see :func:`quiet_openmp_waiting`).
STATE = quiet_openmp_waiting()


def warn_if_spinning() -> None:
    """One warning per process when torch started before embedtrack could choose the wait policy."""
    global STATE
    if STATE == "spinning":
        warnings.warn(ADVICE, RuntimeWarning, stacklevel=4)
        STATE = "spinning, warned"
