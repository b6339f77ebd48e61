"""Device choice and CPU threading, shared by training and inference."""

from __future__ import annotations

import os

import torch

from embedtrack.errors import EmbedTrackError


def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cuda`` without a CUDA device is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise EmbedTrackError("--device cuda requested but no CUDA device is available")
    return torch.device(name)


def use_all_cores() -> None:
    """Let torch use every core this process may run on, unless OMP_NUM_THREADS says otherwise."""
    if os.environ.get("OMP_NUM_THREADS"):
        return
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    torch.set_num_threads(max(1, cores))
