"""`embedtrack run`, `demo` and `models` through click's CliRunner (a tiny random model keeps them fast)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ctc.io import open_tracking_gt, read_track_file
from ctc.lineage import division_count
from embedtrack.cli import main


def test_run_cli_writes_result_and_prints_stage_times(tiny_model: Path, synth_dataset: Path, tmp_path: Path) -> None:
    seq = tmp_path / "01"
    shutil.copytree(synth_dataset / "01", seq)
    result = CliRunner().invoke(main, ["run", str(seq), "--model", str(tiny_model), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "frames/s" in result.output and "cluster" in result.output
    assert (tmp_path / "01_RES" / "res_track.txt").is_file()
    again = CliRunner().invoke(main, ["run", str(seq), "--model", str(tiny_model), "--device", "cpu"])
    assert again.exit_code == 1
    assert "exists" in again.output and "Traceback" not in again.output


@pytest.mark.parametrize("args,message", [
    (["--model", "No-Such-Model"], "Unknown model 'No-Such-Model'"),
])
def test_run_cli_unknown_model_is_one_clear_error(synth_dataset: Path, tmp_path: Path, args: list[str],
                                                  message: str) -> None:
    out = tmp_path / "res"
    result = CliRunner().invoke(main, ["run", str(synth_dataset / "01"), *args, "--output", str(out)])
    assert result.exit_code == 1
    assert message in result.output
    assert not out.exists()


def test_run_cli_missing_folder(tiny_model: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(tmp_path / "missing"), "--model", str(tiny_model)])
    assert result.exit_code == 1
    assert "missing" in result.output and "not found" in result.output


@pytest.mark.slow
def test_demo_runs_end_to_end_and_prints_scores(tiny_model: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path), "--frames", "4", "--size", "96",
                                       "--model", str(tiny_model), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    for metric in ("SEG", "TRA", "DET"):
        assert metric in result.output
    true = open_tracking_gt(tmp_path / "synthetic-nuclei" / "01_GT" / "TRA")[1]
    found = read_track_file(tmp_path / "synthetic-nuclei" / "01_RES" / "res_track.txt")
    assert re.search(rf"tracks {len(found)} \(true {len(true)}\), divisions {division_count(found)} \(true "
                     rf"{division_count(true)}\), \d+ matched: division F1 \d\.\d\d\d", result.output)
    assert (tmp_path / "demo.gif").is_file()
    assert "did not learn this generator" in result.output  # a model not made for the demo's data says so


def test_demo_defaults_to_the_model_made_for_its_data() -> None:
    """The demo's model is bundled and records that it learned the demo's generator on other seeds."""
    from embedtrack.cli.demo import DEMO_MODEL, DEMO_PRESET, DEMO_SEED, score_context
    from embedtrack.models.registry import bundled_models, read_json_object

    training = read_json_object(bundled_models()[DEMO_MODEL] / "config.json")["training"]
    assert f"--preset {DEMO_PRESET} " in training["command"]
    assert f"--seed {DEMO_SEED} " not in training["command"]
    assert "training data" in score_context(DEMO_MODEL) and "did not learn" not in score_context(DEMO_MODEL)


def test_models_lists_bundled_models() -> None:
    from embedtrack.models.registry import bundled_models

    result = CliRunner().invoke(main, ["models"])
    assert result.exit_code == 0
    for name in bundled_models():
        assert name in result.output
