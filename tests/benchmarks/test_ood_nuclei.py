"""The out-of-distribution nuclei generator writes a valid CTC dataset whose ground truth scores 1.0."""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from ctc.evaluate import evaluate
from ctc.io import TRACK_FILE_GT, TRACK_FILE_RES, read_tiff
from ctc.rules import ERROR
from ctc.validate import validate_result

REPO = Path(__file__).resolve().parents[2]


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ood(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return load("ood_nuclei").write(tmp_path_factory.mktemp("ood"), "OOD", frames=6, size=160, n_cells=8, seed=3)


def test_layout_and_validity(ood: Path) -> None:
    raw = sorted((ood / "01").glob("t*.tif"))
    assert len(raw) == 6
    assert len(list((ood / "01_GT" / "SEG").glob("man_seg*.tif"))) == 6
    frame = read_tiff(raw[0])
    assert frame.dtype == np.uint16 and frame.shape == (160, 160)
    assert np.percentile(frame, 5) >= 60  # camera offset, no zero background
    assert not [v for v in validate_result(ood / "01_GT" / "TRA") if v.severity == ERROR]


def test_ground_truth_as_result_scores_one(ood: Path, tmp_path: Path) -> None:
    res = tmp_path / "01_RES"
    res.mkdir()
    for f in (ood / "01_GT" / "TRA").glob("man_track*.tif"):
        shutil.copy(f, res / f.name.replace("man_track", "mask"))
    shutil.copy(ood / "01_GT" / "TRA" / TRACK_FILE_GT, res / TRACK_FILE_RES)
    scores = evaluate(res, ood / "01_GT", ["SEG", "TRA"])
    assert scores["SEG"] == pytest.approx(1.0) and scores["TRA"] == pytest.approx(1.0)


def test_seeded_and_textured() -> None:
    mod = load("ood_nuclei")
    a = mod.simulate(3, (128, 128), 6, seed=11)
    b = mod.simulate(3, (128, 128), 6, seed=11)
    assert all(np.array_equal(x, y) for x, y in zip(a[0], b[0]))
    rng = np.random.default_rng(0)
    patterns = [mod._texture(kind, 12, rng) for kind in mod.TEXTURES]
    assert all(p.shape == (25, 25) and p.std() > 0.1 for p in patterns)  # none of them is flat
