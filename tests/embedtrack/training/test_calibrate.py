"""Calibration of post-processing thresholds (embedtrack.training.calibrate): it must find the known best value."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ctc.errors import CTCFormatError
from embedtrack.training.calibrate import AnnotatedSequence, calibrate, load_annotated
from embedtrack.cli import main
from embedtrack.errors import EmbedTrackError
from embedtrack.models.predictions import Predictions
from embedtrack.models.registry import read_config
from embedtrack.inference.tracker import Tracker
from tests.embedtrack.inference.test_tracker import GroundTruthPredictor, _config, _gt, golden  # noqa: F401


class WithDebris:
    """Perfect predictions with seediness 0.65 in the cells, plus debris blobs of seediness 0.55 whose pixels
    point to their own centre: a seed threshold of 0.5 finds the debris (false positives), 0.7 finds nothing,
    so 0.6 is the one best value."""

    def __init__(self, inner: GroundTruthPredictor) -> None:
        self.inner = inner

    def reset(self) -> None:
        self.inner.reset()

    def __call__(self, frame: np.ndarray) -> Predictions:
        t = self.inner.calls
        pred = self.inner(frame)
        free = self.inner.masks[t] == 0
        seediness = pred.seediness.copy()
        offsets = pred.offsets.copy()
        h, w = seediness.shape
        for y in range(4, h - 8, 24):
            for x in range(4, w - 8, 24):
                if free[y - 2: y + 8, x - 2: x + 8].all():
                    seediness[y: y + 5, x: x + 5] = 0.55
                    rr, cc = np.mgrid[y: y + 5, x: x + 5]
                    offsets[0, rr, cc] = (y + 2 - rr) / 256.0
                    offsets[1, rr, cc] = (x + 2 - cc) / 256.0
        return Predictions(offsets, pred.bandwidths, seediness, pred.track_offsets)


def test_calibration_picks_the_known_best_seed_threshold(golden: Path) -> None:  # noqa: F811
    masks, tracks, images = _gt(golden)
    tracker = Tracker(_config(seed_threshold=0.5), predictor=WithDebris(GroundTruthPredictor(masks, tracks, 0.65)))
    sequence = AnnotatedSequence("01", images, golden / "01_GT")
    result = calibrate(tracker, [sequence], "seg+det+tra",
                       cluster_grid={"seed_threshold": (0.5, 0.6, 0.7)},
                       link_grid={"min_daughter_ratio": (0.0, 0.25, 0.5)})
    assert result.best["seed_threshold"] == 0.6
    assert result.best["min_daughter_ratio"] == 0.25  # perfect tracking offsets: a tie keeps the current value
    by_seed = {row["seed_threshold"]: row for row in result.table if row["stage"] == "cluster"}
    assert by_seed[0.6]["DET"] > by_seed[0.5]["DET"] and by_seed[0.7]["SEG"] == 0.0
    assert result.score == pytest.approx(3.0, abs=0.02)  # SEG + DET + TRA of perfect predictions


def test_annotated_sequences_need_tracking_ground_truth(tmp_path: Path, golden: Path) -> None:  # noqa: F811
    assert [s.name for s in load_annotated(golden)] == ["01"]
    bare = tmp_path / "bare"
    shutil.copytree(golden / "01", bare / "01")  # raw frames without any ground truth
    with pytest.raises(EmbedTrackError, match="man_track.txt: missing"):
        load_annotated(bare)
    with pytest.raises(EmbedTrackError, match="no such sequence"):
        load_annotated(golden, ["07"])
    (bare / "01_GT" / "TRA").mkdir(parents=True)
    os.mkfifo(bare / "01_GT" / "TRA" / "man_track.txt")
    with pytest.raises(CTCFormatError, match=r"man_track.txt: is not a regular file \(a folder, FIFO"):
        load_annotated(bare)


def test_cli_writes_a_calibrated_copy_and_never_the_source(tiny_model: Path, synth_dataset: Path,
                                                             tmp_path: Path) -> None:
    before = (tiny_model / "config.json").read_bytes()
    out = tmp_path / "calibrated"
    grid = ["--seed-thresholds", "0.5,0.9", "--kernel-thresholds", "0.5", "--min-size-factors", "1",
            "--seed-windows", "1"]
    result = CliRunner().invoke(main, ["calibrate", str(tiny_model), str(synth_dataset), "--sequences", "01",
                                       "--metric", "seg+det", "--out", str(out), "--device", "cpu", *grid])
    assert result.exit_code == 0, result.output
    config = read_config(out)
    assert config.calibration["metric"] == "seg+det" and config.calibration["table"]
    assert json.loads(result.output.strip().splitlines()[-1]) == config.calibration["best"]
    assert (out / "weights.pt").read_bytes() == (tiny_model / "weights.pt").read_bytes()
    assert (tiny_model / "config.json").read_bytes() == before
    again = CliRunner().invoke(main, ["calibrate", str(tiny_model), str(synth_dataset), "--out", str(tiny_model),
                                      "--metric", "seg+det", "--device", "cpu", *grid])
    assert again.exit_code == 1 and "Traceback" not in again.output and "input" in again.output
    bad = CliRunner().invoke(main, ["calibrate", str(tiny_model), str(synth_dataset), "--seed-thresholds", "x"])
    assert bad.exit_code == 2 and "--seed-thresholds" in bad.output
    assert (tiny_model / "config.json").read_bytes() == before


def test_a_killed_calibration_leaves_its_scratch_beside_out_and_the_next_run_removes_it(
        tiny_model: Path, synth_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "calibrated"
    system_temp = set(Path(tempfile.gettempdir()).glob("embedtrack-calibrate-*"))
    many = ",".join(f"{v / 100:g}" for v in range(5, 100, 2))  # a long grid: killed while it works
    code = "import sys; from embedtrack.cli import main; sys.exit(main())"
    proc = subprocess.Popen([sys.executable, "-c", code, "calibrate", str(tiny_model), str(synth_dataset), "--out",
                             str(out), "--metric", "seg+det", "--device", "cpu", "--seed-thresholds", many],
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300  # generous: the machine may be loaded

    def scratch() -> list[Path]:
        return [p for p in tmp_path.iterdir() if p.name.startswith(".calibrated.tmp-") and any(p.rglob("*.tif"))]

    try:
        while not scratch():
            assert proc.poll() is None and time.monotonic() < deadline, "calibrate ended before it was killed"
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.wait(timeout=60)
    left = scratch()
    assert len(left) == 1 and set(Path(tempfile.gettempdir()).glob("embedtrack-calibrate-*")) == system_temp
    result = CliRunner().invoke(main, ["calibrate", str(tiny_model), str(synth_dataset), "--out", str(out),
                                       "--metric", "seg+det", "--device", "cpu", "--seed-thresholds", "0.5",
                                       "--kernel-thresholds", "0.5", "--min-size-factors", "1", "--seed-windows", "1"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calibrated"]  # the killed run's scratch is gone


def test_without_a_folder_the_scratch_is_in_the_system_temp_under_a_name_the_next_run_recognises(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from embedtrack.training.calibrate import scratch_folder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()
    left = tmp_path / f".embedtrack-calibrate.tmp-{killed.pid}-abcd1234"
    (left / "01_RES").mkdir(parents=True)
    with scratch_folder(None) as folder:
        assert folder.parent == tmp_path and folder.name.startswith(f".embedtrack-calibrate.tmp-{os.getpid()}-")
        assert not left.exists()
    assert list(tmp_path.iterdir()) == []
