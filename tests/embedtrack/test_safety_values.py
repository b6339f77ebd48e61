"""Issue 19, beyond the output guard: checkpoints and their temporary files, the training lock, value checks."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ctc.errors import CTCError, CTCFormatError
from ctc.fsutil import temp_file_beside
from ctc.guard import MODEL, remove_stale_temps
from ctc.io import ResultWriter
from ctc.limits import max_pixels
from ctc.lineage import Track
from embedtrack.cli import main
from embedtrack.errors import EmbedTrackError
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.training.loop import CHECKPOINT_NAME, _check_out, _model_folder, load_checkpoint
from embedtrack.inference.tracker import Tracker, TrackResult
from tests.tree_state import tree_state


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_checkpoint_temporary_file_of_a_killed_run_is_recognised(tmp_path: Path) -> None:
    model = tmp_path / "M"
    model.mkdir()
    (model / CHECKPOINT_NAME).write_bytes(b"checkpoint")
    tmp = temp_file_beside(model / CHECKPOINT_NAME)  # what a SIGKILL during torch.save leaves
    left = tmp.with_name(tmp.name.replace(f"-{os.getpid()}-", f"-{_dead_pid()}-"))
    tmp.rename(left)
    assert MODEL.problem(model) is None  # still a model folder: --resume and --overwrite accept it
    _check_out(model, [], resume=True, overwrite=False)
    with _model_folder(model, overwrite=False):  # where train --resume removes it
        assert not left.exists()
    assert sorted(p.name for p in model.iterdir()) == [CHECKPOINT_NAME]
    tmp = temp_file_beside(model / CHECKPOINT_NAME)
    live = tmp.rename(tmp.with_name(tmp.name.replace(f"-{os.getpid()}-", f"-{os.getppid()}-")))
    assert remove_stale_temps(model / CHECKPOINT_NAME) == [] and live.exists()  # a live run's is not touched


def _checkpoint(path: Path, **changes: object) -> Path:
    net = torch.nn.Linear(2, 2)
    optimiser = torch.optim.Adam(net.parameters())
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=1e-3, total_steps=10)
    state = {"model": net.state_dict(), "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(),
             "scaler": {}, "epoch": 1, "best_iou": 0.5, "preset": "synth-fluo", "architecture": {}, **changes}
    torch.save(state, path)
    return path


@pytest.mark.parametrize("changes,needle", [({"epoch": 10**9}, "epoch"), ({"epoch": 1e9}, "epoch"),
                                            ({"epoch": -3}, "epoch"),
                                            ({"best_iou": math.nan}, "best_iou"), ({"best_iou": 7.0}, "best_iou")])
def test_checkpoint_values_are_validated(tmp_path: Path, changes: dict[str, object], needle: str) -> None:
    path = _checkpoint(tmp_path / CHECKPOINT_NAME, **changes)
    with pytest.raises(EmbedTrackError, match=rf"{CHECKPOINT_NAME}: not a checkpoint .*{needle}"):
        load_checkpoint(path)


def test_checkpoint_with_a_broken_schedule_is_refused(tmp_path: Path) -> None:
    net = torch.nn.Linear(2, 2)
    schedule = torch.optim.lr_scheduler.OneCycleLR(torch.optim.Adam(net.parameters()), max_lr=1e-3, total_steps=10)
    broken = {**schedule.state_dict(), "last_epoch": 50}
    with pytest.raises(EmbedTrackError, match="schedule last_epoch 50"):
        load_checkpoint(_checkpoint(tmp_path / CHECKPOINT_NAME, schedule=broken))


def test_a_live_training_lock_refuses_a_second_run(tmp_path: Path) -> None:
    out = tmp_path / "M"
    out.mkdir()
    (out / CHECKPOINT_NAME).write_bytes(b"x")
    (out / ".train.lock").write_text(f"{os.getppid()}\n")  # a live process holds it
    before = tree_state(tmp_path)
    result = CliRunner().invoke(main, ["train", str(tmp_path / "nodata"), "--preset", "synth-fluo", "--out", str(out),
                                       "--resume"])
    assert result.exit_code == 1 and f"process {os.getppid()} is training into it" in result.output, result.output
    assert tree_state(tmp_path) == before


def test_a_dead_owners_lock_is_taken_over_and_released(tmp_path: Path) -> None:
    out = tmp_path / "M"
    out.mkdir()
    (out / ".train.lock").write_text(f"{_dead_pid()}\n")
    with _model_folder(out, overwrite=False):
        assert (out / ".train.lock").read_text() == f"{os.getpid()}\n"
    assert not (out / ".train.lock").exists()


def test_train_overwrite_puts_the_old_model_back_when_the_run_fails(tmp_path: Path) -> None:
    out = tmp_path / "M"
    out.mkdir()
    (out / "weights.pt").write_bytes(b"old weights")
    before = tree_state(tmp_path)
    with pytest.raises(RuntimeError), _model_folder(out, overwrite=True):
        assert not (out / "weights.pt").exists()
        (out / "weights.pt").write_bytes(b"new, half-trained")
        raise RuntimeError("interrupted")
    assert tree_state(tmp_path) == before


def test_failed_training_removes_the_parent_folders_it_created(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), _model_folder(tmp_path / "a" / "b" / "M", overwrite=False):
        raise RuntimeError("failed before writing")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option,value,needle", [("--seed-windows", "2.5", "odd whole number"),
                                                 ("--min-size-factors", "-1", "positive factor"),
                                                 ("--seed-thresholds", "1.5", "seed_threshold"),
                                                 ("--daughter-ratios", "nan", "min_daughter_ratio")])
def test_calibrate_grid_values_are_checked_first(tmp_path: Path, option: str, value: str, needle: str) -> None:
    result = CliRunner().invoke(main, ["calibrate", "Fluo-N2DH-SIM+", str(tmp_path), option, value])
    assert result.exit_code == 2 and option in result.output and needle in result.output, result.output


def test_evaluate_threads_are_bounded(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path), str(tmp_path), "--threads", "100000"])
    assert result.exit_code == 2 and "--threads" in result.output, result.output


def test_tta_must_be_a_boolean() -> None:
    with pytest.raises(EmbedTrackError, match="tta must be True, False or None .*'no'"):
        Tracker.from_model("Fluo-N2DH-SIM+", tta="no")  # type: ignore[arg-type]


def test_negative_first_index_is_refused(tmp_path: Path) -> None:
    tracker = Tracker(InferenceConfig())
    with pytest.raises(EmbedTrackError, match="first_index must be a frame number >= 0, got -3"):
        tracker.track([np.zeros((8, 8))], first_index=-3)
    with pytest.raises(CTCError, match="frame number -3 is negative"), ResultWriter(tmp_path / "R", 3) as writer:
        writer.write_mask(-3, np.ones((4, 4), np.uint16))
    assert list(tmp_path.iterdir()) == []
    result = TrackResult([np.ones((4, 4), np.uint16)], [{}], [Track(1, -3, -3, 0)], first_index=-3)
    with pytest.raises(CTCError, match="frame number -3 is negative"):
        result.write_ctc(tmp_path / "R")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("value", ["0.5", "1e3.5", "100.25"])
def test_pixel_limit_must_be_a_whole_number(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("EMBEDTRACK_MAX_PIXELS", value)
    with pytest.raises(CTCFormatError, match="EMBEDTRACK_MAX_PIXELS"):
        max_pixels()


def test_a_stop_signal_ignores_further_ones_while_cleaning_up(monkeypatch: pytest.MonkeyPatch) -> None:
    import signal

    from ctc import progress
    from embedtrack.cli import STOP_SIGNALS, _terminated

    assert signal.SIGHUP in STOP_SIGNALS
    handlers: dict[int, object] = {}
    monkeypatch.setattr(signal, "signal", lambda sig, handler: handlers.__setitem__(sig, handler))
    monkeypatch.setattr(progress, "STOP", None)  # put back after the test
    with pytest.raises(KeyboardInterrupt):
        _terminated(signal.SIGTERM, None)
    assert handlers == {sig: signal.SIG_IGN for sig in STOP_SIGNALS}
    with pytest.raises(KeyboardInterrupt, match="signal 15"):  # and every later step of the command stops
        for _ in progress.progress(range(3)):
            pass


def test_a_failed_picture_removes_the_folders_created_for_it(tmp_path: Path) -> None:
    from ctc.fsutil import write_atomic

    def fail(handle: object) -> None:
        raise RuntimeError("renderer failed")

    with pytest.raises(RuntimeError):
        write_atomic(tmp_path / "a" / "b" / "m.png", fail)
    assert list(tmp_path.iterdir()) == []


def test_of_two_runs_starting_together_only_one_gets_the_training_lock(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from embedtrack.training import lock as train_lock

    out = tmp_path / "M"
    out.mkdir()
    code = ("import sys; from pathlib import Path; from embedtrack.training.lock import locked\n"
            "with locked(Path(sys.argv[1])):\n    print('locked', flush=True); sys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"locked\n"
        # the second run read the lock file just before the first wrote it: only the kernel's lock can tell
        monkeypatch.setattr(train_lock, "lock_owner", lambda lock: None)
        with pytest.raises(EmbedTrackError, match="M: another run is training into it"), train_lock.locked(out):
            raise AssertionError("two runs hold the lock")
        assert (out / ".train.lock").read_text() == f"{holder.pid}\n"  # the holder's lock is untouched
    finally:
        holder.communicate(b"", timeout=60)
    assert holder.returncode == 0 and not (out / ".train.lock").exists()
