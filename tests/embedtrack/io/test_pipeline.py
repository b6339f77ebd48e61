"""`run_sequence`: valid CTC results, CTC default output, and one clear error (and nothing written) on bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import tifffile

from ctc.errors import CTCError
from ctc.validate import validate_result
from embedtrack.errors import ModelError
from embedtrack.io.pipeline import RunOptions, default_output, run_sequence
from embedtrack.inference.tracker import remove_border_instances


def test_run_writes_a_valid_result_next_to_the_sequence(tiny_model: Path, synth_dataset: Path, tmp_path: Path) -> None:
    seq = tmp_path / "01"
    shutil.copytree(synth_dataset / "01", seq)
    report = run_sequence(seq, tiny_model, options=RunOptions(device="cpu"))
    assert report.output == tmp_path / "01_RES"
    assert len(list(report.output.glob("mask*.tif"))) == 6
    assert [v for v in validate_result(report.output) if v.severity == "error"] == []
    assert set(report.seconds) == {"read", "predict", "cluster", "link", "write"}


def test_existing_result_is_not_clobbered(tiny_model: Path, synth_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "res"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(CTCError, match="exists"):
        run_sequence(synth_dataset / "01", tiny_model, out, RunOptions(device="cpu"))
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    with pytest.raises(CTCError, match="does not look like a result folder"):
        run_sequence(synth_dataset / "01", tiny_model, out, RunOptions(device="cpu", overwrite=True))
    (out / "keep.txt").rename(out / "res_track.txt")
    run_sequence(synth_dataset / "01", tiny_model, out, RunOptions(device="cpu", overwrite=True))
    assert (out / "mask000.tif").is_file()


def test_default_output_follows_ctc_convention(tmp_path: Path) -> None:
    assert default_output(tmp_path / "BF-C2DL-HSC" / "01") == tmp_path / "BF-C2DL-HSC" / "01_RES"


def _seq(tmp_path: Path, frames: list[np.ndarray]) -> Path:
    seq = tmp_path / "DS" / "01"
    seq.mkdir(parents=True)
    for i, f in enumerate(frames):
        tifffile.imwrite(seq / f"t{i:03d}.tif", f, photometric="minisblack")
    return seq


@pytest.mark.parametrize(
    "frames,message",
    [
        ([np.zeros((3, 32, 32), np.uint16)] * 2, "3-D|dimension|2-D"),
        ([np.zeros((32, 32), np.uint16), np.zeros((40, 32), np.uint16)], "shape"),
    ],
)
def test_bad_sequences_fail_before_writing(tiny_model: Path, tmp_path: Path, frames: list[np.ndarray],
                                          message: str) -> None:
    seq = _seq(tmp_path, frames)
    with pytest.raises(CTCError, match=message):
        run_sequence(seq, tiny_model, options=RunOptions(device="cpu"))
    assert not (seq.parent / "01_RES").exists()
    assert sorted(p.name for p in seq.parent.iterdir()) == ["01"]


def test_missing_folder_and_unknown_model(tiny_model: Path, synth_dataset: Path, tmp_path: Path) -> None:
    with pytest.raises(CTCError, match="not found"):
        run_sequence(tmp_path / "nope", tiny_model)
    with pytest.raises(ModelError, match="Unknown model 'No-Such-Model'.*Bundled models"):
        run_sequence(synth_dataset / "01", "No-Such-Model", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_remove_border_instances_keeps_cells_reaching_inside() -> None:
    labels = np.zeros((20, 20), np.int32)
    labels[0:2, 0:2] = 1  # entirely in the border strip
    labels[0:8, 10:12] = 2  # touches the border but reaches inside
    out = remove_border_instances(labels, 3)
    assert set(np.unique(out)) == {0, 2}


def test_interrupted_run_leaves_nothing(tiny_model: Path, synth_dataset: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import embedtrack.inference.tracker as tracker

    calls = {"n": 0}
    real_cluster = tracker.cluster

    def interrupt_on_third_frame(*args: object, **kwargs: object) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_cluster(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tracker, "cluster", interrupt_on_third_frame)
    seq = tmp_path / "01"
    shutil.copytree(synth_dataset / "01", seq)
    with pytest.raises(KeyboardInterrupt):
        run_sequence(seq, tiny_model, options=RunOptions(device="cpu"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01"]
