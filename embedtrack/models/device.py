"""Device choice, numeric precision and CPU threading, shared by training and inference."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from embedtrack.errors import EmbedTrackError
from embedtrack.openmp import warn_if_spinning

CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CPUINFO = Path("/proc/cpuinfo")
BF16_FLAGS = ("avx512_bf16", "amx_bf16")
PRECISIONS = ("auto", "fp32", "bf16")


def pick_device(name: str) -> torch.device:
    """``auto`` -> CUDA when present, else CPU; ``cuda`` without a CUDA device is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise EmbedTrackError(f"device {name!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise EmbedTrackError(f"--device {name} requested but no CUDA device is available")
    if device.type not in ("cpu", "cuda", "mps"):
        raise EmbedTrackError(f"device {name!r}: expected auto, cpu, cuda or cuda:N")
    return device


def cpu_has_bf16(cpuinfo: Path = CPUINFO) -> bool:
    """Whether the CPU computes bfloat16 in hardware: the ``avx512_bf16`` or ``amx_bf16`` flag of
    /proc/cpuinfo (torch's own mkldnn check also accepts plain AVX-512, where bf16 is emulated and slow)."""
    try:
        flags = {flag for line in cpuinfo.read_text().splitlines() if line.startswith("flags")
                 for flag in line.split(":", 1)[1].split()}
    except OSError:
        return False
    return any(flag in flags for flag in BF16_FLAGS)


def resolve_precision(name: str, device: torch.device) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for a requested precision: ``auto`` is fp16 autocast on CUDA, bf16 on a
    CPU with bf16 in hardware, fp32 otherwise."""
    if name not in PRECISIONS:
        raise EmbedTrackError(f"precision {name!r}: expected one of {', '.join(PRECISIONS)}")
    if name != "auto":
        return name
    if device.type == "cuda":
        return "fp16"
    return "bf16" if device.type == "cpu" and cpu_has_bf16() else "fp32"


def cgroup_cpu_limit(cpu_max: Path = CPU_MAX) -> float | None:
    """CPUs allowed by the cgroup v2 quota (``cpu.max``: "<quota> <period>" or "max <period>"), None if unset."""
    try:
        fields = cpu_max.read_text().split()
    except OSError:
        return None
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        quota, period = int(fields[0]), int(fields[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def available_cpus(cpu_max: Path = CPU_MAX) -> int:
    """CPUs this process may use: its affinity mask, capped by the cgroup CPU quota (rounded up)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = cgroup_cpu_limit(cpu_max)
    if limit is not None:
        cores = min(cores, math.ceil(limit))
    return max(1, cores)


def use_all_cores() -> None:
    """Let torch use every CPU this process may use, unless OMP_NUM_THREADS says otherwise (and warn once when
    torch started before embedtrack could set OpenMP's wait policy: :func:`embedtrack.openmp.warn_if_spinning`)."""
    warn_if_spinning()
    if os.environ.get("OMP_NUM_THREADS"):
        return
    torch.set_num_threads(available_cpus())
