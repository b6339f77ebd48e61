"""benchmarks/record_conditions.py writes a model's training conditions into its config.json, and only that."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import tifffile

from ctc.conditions import measure
from ctc.synth import write_dataset
from embedtrack.models.registry import CONFIG_NAME, read_config
from tests.benchmarks.test_ood_nuclei import load


def test_record_of_chosen_frames(tiny_model: Path, tmp_path: Path) -> None:
    record_conditions = load("record_conditions")
    data = tmp_path / "Fluo-N2DH-SIM+"
    write_dataset(data, "fluo", 4, (96, 96), seed=5, sequences=("01",))
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    before = json.loads((model / CONFIG_NAME).read_text())
    assert record_conditions.main([str(model), f"{data / '01'}:0-3"]) == 0
    after = json.loads((model / CONFIG_NAME).read_text())
    assert {k: v for k, v in after.items() if k != "appearance"} == before  # nothing else changed
    seg = data / "01_GT" / "SEG"
    frames = [t for t in range(4) if (seg / f"man_seg{t:03d}.tif").is_file()]
    expected = measure((tifffile.imread(data / "01" / f"t{t:03d}.tif"), tifffile.imread(seg / f"man_seg{t:03d}.tif"))
                       for t in frames)
    record = read_config(model).appearance
    assert record is not None and expected is not None
    assert record.cell_diameter == round(expected.diameter_median, 2) and record.cells == expected.cells
    assert record.frames.startswith("Fluo-N2DH-SIM+/01 frames ")


def test_bad_range_is_one_error(tiny_model: Path, tmp_path: Path, capsys: object) -> None:
    record_conditions = load("record_conditions")
    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    before = (model / CONFIG_NAME).read_bytes()
    assert record_conditions.parse_ranges("0-2,5", "x") == {0, 1, 2, 5}
    assert record_conditions.main([str(model), str(tmp_path), "--frames", "5-2"]) == 2
    assert (model / CONFIG_NAME).read_bytes() == before
