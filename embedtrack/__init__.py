"""EmbedTrack: simultaneous cell segmentation and tracking (Löffler & Mikut).

``from embedtrack import Tracker`` gives the in-memory tracker (:mod:`embedtrack.inference.tracker`); it is imported on
first use, so that importing the package (and ``embedtrack --help``) stays light.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from embedtrack import openmp  # noqa: F401  (first: sets OMP_WAIT_POLICY before torch can start; see there)
from embedtrack._version import __version__  # noqa: F401  (the package's version)
from ctc.guard import protect

__all__ = ["Tracker", "InferenceConfig"]

protect(Path(__file__).parent / "models", "the bundled models folder")  # no command writes into the package


def __getattr__(name: str) -> Any:
    if name == "Tracker":
        from embedtrack.inference.tracker import Tracker

        return Tracker
    if name == "InferenceConfig":
        from embedtrack.models.inference_config import InferenceConfig

        return InferenceConfig
    raise AttributeError(f"module 'embedtrack' has no attribute {name!r}")
