"""`embedtrack run` with bad input and unsafe outputs: exit 1, one message naming the culprit, no traceback,
nothing written, nothing of the user's changed."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner, Result

from embedtrack.cli import main
from tests.tree_state import tree_state


def _run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, ["run", *map(str, args), "--device", "cpu"])


def _one_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output


@pytest.fixture
def user_dataset(synth_dataset: Path, tmp_path: Path) -> Path:
    """A private copy of the dataset (raw frames + GT) that the tests try to damage."""
    return Path(shutil.copytree(synth_dataset, tmp_path / "DS"))


@pytest.mark.parametrize("output,how", [("DS/01", "is"), ("DS", "contains"), (".", "contains"),
                                        ("DS/01/res", "lies inside")])
def test_overwrite_never_deletes_the_input(tiny_model: Path, user_dataset: Path, monkeypatch: pytest.MonkeyPatch,
                                           output: str, how: str) -> None:
    monkeypatch.chdir(user_dataset.parent)
    before = tree_state(user_dataset.parent)
    result = _run("DS/01", "--model", tiny_model, "--output", output, "--overwrite")
    _one_error(result, f"the output {how} the input DS/01")
    assert tree_state(user_dataset.parent) == before


def test_overwrite_refuses_a_ground_truth_folder(tiny_model: Path, user_dataset: Path) -> None:
    before = tree_state(user_dataset)
    result = _run(user_dataset / "01", "--model", tiny_model, "--output", user_dataset / "01_GT", "--overwrite")
    _one_error(result, "01_GT", "does not look like a result folder")
    assert tree_state(user_dataset) == before


def test_a_mistyped_model_is_the_first_error_even_beside_an_existing_result(user_dataset: Path) -> None:
    (user_dataset / "01_RES").mkdir()
    (user_dataset / "01_RES" / "notes.txt").write_text("mine")
    result = _run(user_dataset / "01", "--model", "Fluo-N2DH-GOWT")
    _one_error(result, "Unknown model 'Fluo-N2DH-GOWT'", "Did you mean 'Fluo-N2DH-GOWT1'")
    assert "exists" not in result.output and (user_dataset / "01_RES" / "notes.txt").read_text() == "mine"


def test_overwrite_replaces_an_earlier_result(tiny_model: Path, user_dataset: Path) -> None:
    for _ in range(2):
        result = _run(user_dataset / "01", "--model", tiny_model, "--overwrite")
        assert result.exit_code == 0, result.output
    assert (user_dataset / "01_RES" / "res_track.txt").is_file()
    assert not [p for p in user_dataset.iterdir() if p.name.startswith(".")]


def _rewrite_frames(seq: Path, change: Callable[[np.ndarray], np.ndarray]) -> None:
    for path in sorted(seq.glob("t*.tif")):
        tifffile.imwrite(path, change(tifffile.imread(path)))


def test_a_nan_pixel_does_not_empty_the_frame(tiny_model: Path, user_dataset: Path) -> None:
    def one_nan(frame: np.ndarray) -> np.ndarray:
        frame = frame.astype(np.float32)
        frame[5, 5] = np.nan
        return frame

    _rewrite_frames(user_dataset / "01", one_nan)
    result = _run(user_dataset / "01", "--model", tiny_model)
    assert result.exit_code == 0, result.output
    for mask in sorted((user_dataset / "01_RES").glob("mask*.tif")):
        assert tifffile.imread(mask).max() > 0, mask


def test_boolean_frames_run(tiny_model: Path, user_dataset: Path) -> None:
    _rewrite_frames(user_dataset / "01", lambda f: f > np.median(f))
    result = _run(user_dataset / "01", "--model", tiny_model)
    assert result.exit_code == 0, result.output
    assert (user_dataset / "01_RES" / "res_track.txt").is_file()


def test_no_cells_anywhere_says_so(tiny_model: Path, user_dataset: Path, tmp_path: Path) -> None:
    import torch

    from embedtrack.models.registry import load_model, save_model

    net, config = load_model(tiny_model)
    with torch.no_grad():  # seediness near 0 everywhere: no cell is ever found
        net.seed_decoder.layers[-1].bias.fill_(-30.0)
    blind = tmp_path / "blind"
    save_model(blind, net, config)
    result = _run(user_dataset / "01", "--model", blind)
    _one_error(result, f"no cells were found in any frame of {user_dataset / '01'} (is this the right model?)")
    assert not (user_dataset / "01_RES").exists()


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return open, (str(self.marker), "w")


@pytest.mark.parametrize("weights", ["payload", b"", b"\x80\x04garbage", b"PK\x03\x04"])
def test_model_weights_are_never_executed(tiny_model: Path, user_dataset: Path, tmp_path: Path,
                                          weights: str | bytes) -> None:
    import torch

    model, marker = Path(shutil.copytree(tiny_model, tmp_path / "model")), tmp_path / "pwned"
    if weights == "payload":
        torch.save({"layer.weight": _Payload(marker)}, model / "weights.pt")
    else:
        (model / "weights.pt").write_bytes(weights)  # type: ignore[arg-type]
    result = _run(user_dataset / "01", "--model", model)
    _one_error(result, str(model / "weights.pt"), "cannot read weights")
    assert not marker.exists() and not (user_dataset / "01_RES").exists()
