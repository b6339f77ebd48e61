"""Precision choice (fp32 / bf16 autocast + channels-last) and CPU thread count from affinity and cgroup quota."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ctc.synth import generate_sequence
from embedtrack.cli import main
from embedtrack.models.device import available_cpus, cgroup_cpu_limit, cpu_has_bf16, resolve_precision
from embedtrack.training.metrics import matched_iou
from embedtrack.inference.tracker import Tracker


def unmatched_instances(a: np.ndarray, b: np.ndarray) -> list[int]:
    """Labels of ``a`` whose best-overlapping label of ``b`` has IoU <= 0.5."""
    pairs, counts = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1, return_counts=True)
    area_a = dict(zip(*np.unique(a, return_counts=True)))
    area_b = dict(zip(*np.unique(b, return_counts=True)))
    best: dict[int, float] = {}
    for (la, lb), inter in zip(pairs.T.tolist(), counts.tolist()):
        if la and lb:
            iou = inter / (area_a[la] + area_b[lb] - inter)
            best[la] = max(best.get(la, 0.0), iou)
    return [int(la) for la in area_a if la and best.get(la, 0.0) <= 0.5]


def seg(labels: list[np.ndarray], gt: list[np.ndarray]) -> float:
    sums = [matched_iou(p, g) for p, g in zip(labels, gt)]
    return sum(s for s, _ in sums) / max(1, sum(n for _, n in sums))


def test_bf16_and_fp32_give_the_same_instances() -> None:
    if not cpu_has_bf16():
        pytest.skip("this CPU has no bf16 in hardware (no avx512_bf16/amx_bf16 flag)")
    sequence = generate_sequence("fluo", 3, (256, 256), seed=6)  # synthetic: the real-data model sees a few
    results = {}                                                   # borderline instances; one may flip
    for precision in ("fp32", "bf16"):
        tracker = Tracker.from_model("Fluo-N2DH-SIM+", device="cpu", tta=False, precision=precision)
        assert tracker.info["precision"] == precision
        results[precision] = tracker.track(sequence.images).labels
    assert sum(len(np.unique(lab)) - 1 for lab in results["fp32"]) >= 10  # enough cells to mean something
    for a, b in zip(results["fp32"], results["bf16"]):
        assert len(unmatched_instances(a, b)) <= 1 and len(unmatched_instances(b, a)) <= 1
    seg32, seg16 = seg(results["fp32"], sequence.masks), seg(results["bf16"], sequence.masks)
    assert seg32 > 0.4 and abs(seg32 - seg16) <= 0.02


def test_resolve_precision() -> None:
    assert resolve_precision("fp32", torch.device("cpu")) == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")) == "bf16"
    assert resolve_precision("auto", torch.device("cuda")) == "fp16"
    assert resolve_precision("auto", torch.device("cpu")) == ("bf16" if cpu_has_bf16() else "fp32")


def test_cpu_has_bf16_reads_the_flags(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512bw\n")
    assert not cpu_has_bf16(info)
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16\n")
    assert cpu_has_bf16(info)
    assert not cpu_has_bf16(tmp_path / "missing")


def test_cgroup_quota_caps_the_thread_count(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("max 100000\n")
    assert cgroup_cpu_limit(cpu_max) is None
    cpu_max.write_text("150000 100000\n")
    assert cgroup_cpu_limit(cpu_max) == 1.5
    assert available_cpus(cpu_max) == min(2, len(os.sched_getaffinity(0)))
    cpu_max.write_text("50000 100000\n")
    assert available_cpus(cpu_max) == 1
    assert cgroup_cpu_limit(tmp_path / "missing") is None
    assert available_cpus(tmp_path / "missing") == len(os.sched_getaffinity(0))


def test_cli_records_precision_and_waits_passively(tiny_model: Path, synth_dataset: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    seq = tmp_path / "01"
    shutil.copytree(synth_dataset / "01", seq)
    result = CliRunner().invoke(main, ["run", str(seq), "--model", str(tiny_model), "--device", "cpu",
                                       "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "01_RES.json").read_text())["precision"] == "fp32"
    assert "(fp32)" in result.output and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    CliRunner().invoke(main, ["models"])
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_cli_compile_reaches_the_network(tiny_model: Path, synth_dataset: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`run --compile` hands the encoder and both decoders to torch.compile (recorded here instead of
    compiling, which takes minutes on a CPU) and records it in the settings; without it nothing is compiled."""
    compiled: list[str] = []

    def record(fn: Any, **kwargs: Any) -> Any:
        compiled.append(fn.__name__)
        return fn

    monkeypatch.setattr(torch, "compile", record)
    seq = tmp_path / "01"
    shutil.copytree(synth_dataset / "01", seq)
    for flag, expected in (("--no-compile", []), ("--compile", ["encode", "decode_seg", "decode_track"])):
        compiled.clear()
        result = CliRunner().invoke(main, ["run", str(seq), "--model", str(tiny_model), "--device", "cpu",
                                           flag, "--overwrite"])
        assert result.exit_code == 0, result.output
        assert compiled == expected
        assert json.loads((tmp_path / "01_RES.json").read_text())["compile"] is bool(expected)


@pytest.mark.parametrize("device", ["gpu", "cuda:x", "meta"])
def test_an_unknown_device_is_one_error_naming_it(device: str) -> None:
    from embedtrack.errors import EmbedTrackError

    with pytest.raises(EmbedTrackError, match=rf"device '{device}': expected auto, cpu, cuda or cuda:N"):
        Tracker.from_model("Fluo-N2DH-SIM+", device=device)
