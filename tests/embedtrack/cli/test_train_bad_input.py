"""`embedtrack train` with bad input: a crafted, broken or foreign checkpoint, bad options, unusable data.

Each case: exit code 1 (2 for click's own option errors), one message naming the file or option, no traceback,
nothing of the user's changed and no folder left behind."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedtrack.cli import main
from embedtrack.errors import EmbedTrackError
from embedtrack.training.loop import load_checkpoint
from tests.tree_state import tree_state

TINY = ["--preset", "synth-fluo", "--crops-per-epoch", "2", "--batch-size", "1", "--widths", "4,8,16"]


def _train(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["train", *map(str, args)])


def _one_error(result: Result, *needles: str, code: int = 1) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output


class _Payload:
    """Unpickling this object would create ``marker``: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


def _valid_checkpoint() -> bytes:
    net = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(net.parameters())
    state = {"model": net.state_dict(), "optimiser": opt.state_dict(), "schedule": {"total_steps": 4},
             "scaler": {}, "epoch": 1, "best_iou": 0.5, "preset": "synth-fluo", "architecture": {}}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def test_resume_with_a_malicious_checkpoint_runs_nothing(synth_dataset: Path, tmp_path: Path) -> None:
    out, marker = tmp_path / "M", tmp_path / "pwned"
    out.mkdir()
    torch.save({"model": _Payload(marker), "epoch": 1}, out / "checkpoint.pt")
    before = tree_state(tmp_path)
    result = _train(synth_dataset, "--out", out, "--resume", *TINY)
    _one_error(result, str(out / "checkpoint.pt"), "never loaded")
    assert not marker.exists()
    assert tree_state(tmp_path) == before


@pytest.mark.parametrize("content", [b"", b"\x00" * 10, b"PK\x03\x04 not a zip", b"random text\n"])
def test_resume_with_a_broken_checkpoint_is_one_error(synth_dataset: Path, tmp_path: Path, content: bytes) -> None:
    out = tmp_path / "M"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(content)
    result = _train(synth_dataset, "--out", out, "--resume", *TINY)
    _one_error(result, str(out / "checkpoint.pt"), "cannot read checkpoint")
    assert (out / "checkpoint.pt").read_bytes() == content


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_damaged_checkpoint_is_one_clear_error(tmp_path: Path, data: st.DataObject) -> None:
    good = _valid_checkpoint()
    how = data.draw(st.sampled_from(["truncate", "flip", "random"]))
    if how == "truncate":
        damaged = good[:data.draw(st.integers(0, len(good) - 1))]
    elif how == "flip":
        at = data.draw(st.integers(0, len(good) - 1))
        damaged = good[:at] + bytes([good[at] ^ 0xFF]) + good[at + 1:]
    else:
        damaged = data.draw(st.binary(max_size=2000))
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(damaged)
    try:
        state = load_checkpoint(path)
    except EmbedTrackError as err:
        assert str(path) in str(err)
    else:  # a flipped byte may hit a tensor's data or a value: still a well-formed checkpoint
        assert set(state) >= {"model", "optimiser", "epoch"}


def test_checkpoint_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(EmbedTrackError, match="not a checkpoint written by embedtrack train .missing model"):
        load_checkpoint(path)
    torch.save({**torch.load(io.BytesIO(_valid_checkpoint()), weights_only=True), "epoch": "1"}, path)
    with pytest.raises(EmbedTrackError, match="epoch of the wrong type"):
        load_checkpoint(path)


def _copy(synth_dataset: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(synth_dataset, tmp_path / "DS"))


def test_labels_above_uint16_are_refused_not_wrapped(synth_dataset: Path, tmp_path: Path) -> None:
    import tifffile

    data = _copy(synth_dataset, tmp_path)
    marker = data / "01_GT" / "TRA" / "man_track002.tif"
    labels = tifffile.imread(marker).astype(np.int32)
    labels[labels > 0] += 65535  # label 1 becomes 65536, which uint16 would wrap to background
    tifffile.imwrite(marker, labels)
    before = tree_state(tmp_path)
    result = _train(data, "--out", tmp_path / "M", "--epochs", "1", *TINY)
    _one_error(result, str(marker), "does not fit uint16")
    assert tree_state(tmp_path) == before


def test_boolean_raw_frames_load(synth_dataset: Path, tmp_path: Path) -> None:
    import tifffile

    from embedtrack.training.data import load_dataset
    from embedtrack.models.presets import get_preset

    data = _copy(synth_dataset, tmp_path)
    for path in (data / "01").glob("t*.tif"):
        frame = tifffile.imread(path)
        tifffile.imwrite(path, frame > np.median(frame))
    (sequence,) = load_dataset(data, get_preset("synth-fluo"))
    assert all(np.isfinite(f).all() and f.max() > f.min() for f in sequence.frames)


@pytest.mark.parametrize("option,value,message", [
    ("--widths", "1,1,1", "each stage must be wider"), ("--widths", "16,8,32", "each stage must be wider"),
    ("--widths", "16,64", "expected three integers"), ("--widths", "a,b,c", "expected three integers"),
    ("--widths", "0,-1,2", "each stage must be wider"), ("--lr", "nan", "positive number"),
    ("--lr", "inf", "positive number"), ("--lr", "0", "positive number"), ("--lr", "-1e-3", "positive number"),
])
def test_bad_options_are_refused_before_any_work(synth_dataset: Path, tmp_path: Path, option: str, value: str,
                                                 message: str) -> None:
    result = _train(synth_dataset, "--out", tmp_path / "M", *TINY, option, value)
    _one_error(result, option, message, code=2)
    assert list(tmp_path.iterdir()) == []


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(-5, 300), min_size=3, max_size=3))
def test_widths_are_usable_exactly_when_they_increase(widths: list[int]) -> None:
    from embedtrack.training.loop import widths_problem

    assert (widths_problem(widths) is None) == (1 < widths[0] < widths[1] < widths[2])


def test_training_data_without_masks_leaves_no_folder(synth_dataset: Path, tmp_path: Path) -> None:
    import tifffile

    data = _copy(synth_dataset, tmp_path)
    for marker in (data / "01_GT" / "TRA").glob("man_track*.tif"):
        tifffile.imwrite(marker, np.zeros_like(tifffile.imread(marker)))
    (data / "01_GT" / "TRA" / "man_track.txt").write_text("")
    result = _train(data, "--out", tmp_path / "out" / "M", "--epochs", "1", *TINY)
    _one_error(result, "man_track.txt: invalid CTC ground truth, not used for training: no tracks declared")
    assert not (tmp_path / "out" / "M").exists()


def test_ground_truth_whose_track_file_lacks_a_track_of_the_masks_is_refused(synth_dataset: Path,
                                                                             tmp_path: Path) -> None:
    """Training checks its tracking ground truth as `evaluate` does: a label in the markers that man_track.txt
    does not declare would teach wrong links."""
    data = _copy(synth_dataset, tmp_path)
    track_file = data / "01_GT" / "TRA" / "man_track.txt"
    lines = track_file.read_text().splitlines()
    track_file.write_text("\n".join(lines[1:]) + "\n")
    dropped = lines[0].split()[0]
    result = _train(data, "--out", tmp_path / "M", "--epochs", "1", *TINY)
    _one_error(result, f"{track_file}: invalid CTC ground truth, not used for training",
               f"label {dropped}: label in the mask is not declared in man_track.txt")
    assert not (tmp_path / "M").exists()


def test_more_marker_frames_than_raw_frames_are_named(synth_dataset: Path, tmp_path: Path) -> None:
    data = _copy(synth_dataset, tmp_path)
    raw = sorted((data / "01").glob("t*.tif"))
    for path in raw[-2:]:
        path.unlink()
    n = len(raw)
    result = _train(data, "--out", tmp_path / "M", "--epochs", "1", *TINY)
    _one_error(result, "01_GT/TRA: needs one mask per raw frame; frame numbers "
                       f"[{n - 2}, {n - 1}] that the raw sequence lacks")


def test_library_refuses_a_nan_learning_rate(synth_dataset: Path, tmp_path: Path) -> None:
    from embedtrack.training.loop import TrainOptions, train

    with pytest.raises(EmbedTrackError, match="learning rate must be a positive number, got nan"):
        train(synth_dataset, "synth-fluo", tmp_path / "M", TrainOptions(lr=float("nan")))
    assert not (tmp_path / "M").exists()


def test_checkpoint_that_does_not_fit_the_model_is_one_error(tmp_path: Path) -> None:
    from embedtrack.training.loop import _restore

    net = torch.nn.Linear(2, 2)
    optimiser = torch.optim.Adam(net.parameters())
    state = {"model": {"other.weight": torch.zeros(1)}, "optimiser": {}, "scaler": {}}
    with pytest.raises(EmbedTrackError, match=r"checkpoint.pt: does not fit this model and optimiser"):
        _restore(tmp_path / "checkpoint.pt", state, net, optimiser, torch.amp.GradScaler("cuda", enabled=False))
