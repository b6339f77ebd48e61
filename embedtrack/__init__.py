"""EmbedTrack: simultaneous cell segmentation and tracking (Löffler & Mikut).

``from embedtrack import Tracker`` gives the in-memory tracker (:mod:`embedtrack.tracker`); it is imported on
first use, so that importing the package (and ``embedtrack --help``) stays light.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

__version__ = "0.1.0"
__all__ = ["Tracker", "InferenceConfig"]

#: What OpenMP's wait policy will be: "user" (OMP_WAIT_POLICY was set), "passive" (set here, before torch
#: started) or "spinning" (torch was imported before embedtrack, so OpenMP kept its default).
OPENMP_WAIT = "user"
OPENMP_ADVICE = ("torch was imported before embedtrack, so idle OpenMP threads spin instead of sleeping, which "
                 "makes tracking several times slower when other work shares the cores; set OMP_WAIT_POLICY=PASSIVE "
                 "in the environment before Python starts, or import embedtrack before torch")


def quiet_openmp_waiting() -> str:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless the user chose a policy, so that idle OpenMP threads sleep instead
    of spinning against other work (the ``embedtrack`` command and ``import embedtrack`` alike). OpenMP reads it
    once, when torch starts; returns :data:`OPENMP_WAIT`'s value for this moment."""
    if os.environ.get("OMP_WAIT_POLICY"):
        return "user"
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return "spinning" if "torch" in sys.modules else "passive"


def warn_if_openmp_spins() -> None:
    """One warning per process when torch started before embedtrack could choose the wait policy."""
    global OPENMP_WAIT
    if OPENMP_WAIT == "spinning":
        warnings.warn(OPENMP_ADVICE, RuntimeWarning, stacklevel=4)
        OPENMP_WAIT = "spinning, warned"


OPENMP_WAIT = quiet_openmp_waiting()


def __getattr__(name: str) -> Any:
    if name == "Tracker":
        from embedtrack.tracker import Tracker

        return Tracker
    if name == "InferenceConfig":
        from embedtrack.inference_config import InferenceConfig

        return InferenceConfig
    raise AttributeError(f"module 'embedtrack' has no attribute {name!r}")
