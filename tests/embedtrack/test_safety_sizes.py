"""Sizes and values that would cost memory, disk or time before anything useful happens are refused up front:
synthetic frame sizes, model architecture numbers, announced download sizes, unreadable config files."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from ctc.synth import generate_sequence
from embedtrack.errors import ConfigError, ModelError
from embedtrack.models.architecture import ArchConfig
from embedtrack.models.registry import BUNDLED_DIR, CONFIG_NAME, MAX_CONFIG_BYTES, load_model, read_config
from embedtrack.inference.tracker import Tracker
from tests.cli_result import invoke, refused
from tests.conftest import write_dataset


def test_synth_refuses_a_sequence_larger_than_the_memory(tmp_path: Path) -> None:
    result = invoke("synth", tmp_path / "DS", "--size", "11000", "11000", "--frames", "10000000")
    refused(result, "--frames 10000000 --size 11000 11000: a synthetic sequence is built in memory")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("key,value,needle", [
    ("widths", [8, 32, 10**7], r"widths must be whole numbers from 1 to 4096, got \[8, 32, 10000000\]"),
    ("widths", [8, 32, 1e7], r"widths must be a list, got \[8, 32, 10000000.0\]"),
    ("widths", [0, 32, 64], r"widths must be whole numbers from 1 to 4096"),
    ("encoder_blocks", 10**6, r"encoder_blocks must be in \[1, 64\], got 1000000"),
    ("encoder_blocks", 1e6, r"encoder_blocks must be int, got 1000000.0"),
    ("dilation_rounds", 17, r"dilation_rounds must be in \[1, 16\]"),
    ("in_channels", 1000, r"in_channels must be in \[1, 16\]"),
])
def test_architecture_numbers_are_bounded_before_the_network_is_built(tmp_path: Path, key: str, value: object,
                                                                       needle: str) -> None:
    folder = shutil.copytree(BUNDLED_DIR / "Fluo-N2DH-SIM+", tmp_path / "M")
    config = json.loads((folder / CONFIG_NAME).read_text())
    config["architecture"][key] = value
    (folder / CONFIG_NAME).write_text(json.dumps(config))
    with pytest.raises(ModelError, match=rf"{folder / CONFIG_NAME}: architecture: {needle}"):
        load_model(folder)
    with pytest.raises(ConfigError, match=rf"architecture: {needle}"):
        ArchConfig.from_dict(config["architecture"])


def test_a_float64_sequence_near_1e38_is_tracked_like_the_sequence_itself() -> None:
    frames = [image.astype(np.float64) for image in generate_sequence("fluo", 3, (96, 96), 0).images]
    tracker = Tracker.from_model("Fluo-N2DH-SIM+", device="cpu")
    plain, huge = tracker.track(frames), tracker.track([frame * 1e37 for frame in frames])
    assert all(labels.max() > 0 for labels in plain.labels)
    assert all(np.array_equal(a, b) for a, b in zip(plain.labels, huge.labels))


@pytest.mark.parametrize("content,needle", [
    (b'{"name": "\xff\xfe"}', r"cannot read model config \(not UTF-8 text: invalid start byte at byte 10\)"),
    (b"[" * 100_000 + b"]" * 100_000, r"cannot read model config \(JSON nested too deeply\)"),
    (b"[1, 2]", "expected a JSON object, got list"),
    (b"{} " + b" " * MAX_CONFIG_BYTES, r"1,048,579 bytes, more than the 1,048,576 a model config can need"),
])
def test_an_unreadable_config_is_one_error_naming_it(tmp_path: Path, content: bytes, needle: str) -> None:
    folder = shutil.copytree(BUNDLED_DIR / "Fluo-N2DH-SIM+", tmp_path / "M")
    (folder / CONFIG_NAME).write_bytes(content)
    with pytest.raises(ModelError, match=rf"^{re.escape(str(folder / CONFIG_NAME))}: {needle}"):
        read_config(folder)
    data = write_dataset(tmp_path / "DS", with_gt=False, with_st=False)
    refused(invoke("run", data / "01", "--model", folder, "--output", tmp_path / "R"), f"{folder / CONFIG_NAME}: ")
    assert not (tmp_path / "R").exists()
