"""Every command that writes applies the one output rule: never into an input, replace only its own folders."""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

from tests.cli_result import invoke as _invoke
from tests.cli_result import refused as _refused
from tests.tree_state import tree_state


def test_synth_overwrite_refuses_a_folder_it_did_not_write(synth_dataset: Path, tmp_path: Path) -> None:
    data = Path(shutil.copytree(synth_dataset, tmp_path / "DS"))
    (data / "synth.json").unlink()
    (data / "notes.txt").write_text("mine")
    before = tree_state(tmp_path)
    result = _invoke("synth", data, "--frames", "2", "--size", "32", "32", "--overwrite")
    _refused(result, "DS", "does not look like a synthetic dataset folder")
    assert tree_state(tmp_path) == before


def test_synth_overwrite_replaces_its_own_dataset(tmp_path: Path) -> None:
    for _ in range(2):
        result = _invoke("synth", tmp_path / "DS", "--frames", "2", "--size", "32", "32", "--sequences", "01",
                         "--overwrite")
        assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DS"]


def test_train_out_must_not_be_the_dataset(synth_dataset: Path, tmp_path: Path) -> None:
    data = Path(shutil.copytree(synth_dataset, tmp_path / "DS"))
    before = tree_state(tmp_path)
    for out in (data, data / "model", tmp_path):
        _refused(_invoke("train", data, "--preset", "synth-fluo", "--out", out, "--resume"), "the input")
    assert tree_state(tmp_path) == before


def test_train_resume_refuses_a_folder_that_is_not_a_model(synth_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "M"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"")
    (out / "thesis.tex").write_text("mine")
    before = tree_state(tmp_path)
    result = _invoke("train", synth_dataset, "--preset", "synth-fluo", "--out", out, "--resume")
    _refused(result, "does not look like a model folder", "thesis.tex")
    assert tree_state(tmp_path) == before


def test_show_never_writes_into_its_inputs(synth_dataset: Path, tmp_path: Path) -> None:
    data = Path(shutil.copytree(synth_dataset, tmp_path / "DS"))
    before = tree_state(tmp_path)
    gt = data / "01_GT" / "TRA"
    for extra in (["--out", data / "01" / "movie.gif"], ["--out", tmp_path / "m.gif", "--lineage", gt / "a.png"]):
        _refused(_invoke("show", gt, "--raw", data / "01", *extra), "lies inside the input")
    assert tree_state(tmp_path) == before


def _result_of_run(synth_dataset: Path, tiny_model: Path, tmp_path: Path) -> Path:
    data = Path(shutil.copytree(synth_dataset, tmp_path / "DS"))
    assert _invoke("run", data / "01", "--model", tiny_model, "--device", "cpu").exit_code == 0
    return data


def test_overwrite_of_a_read_only_result_is_refused_before_any_work(synth_dataset: Path, tiny_model: Path,
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    import ctc.guard
    import embedtrack.inference.tracker

    data = _result_of_run(synth_dataset, tiny_model, tmp_path)
    real_access = os.access
    monkeypatch.setattr(ctc.guard.os, "access", lambda p, mode: Path(p).name != "01_RES" and real_access(p, mode))
    monkeypatch.setattr(embedtrack.inference.tracker.Tracker, "from_model", None)  # loading the model would fail
    before = tree_state(tmp_path)
    result = _invoke("run", data / "01", "--model", tiny_model, "--device", "cpu", "--overwrite")
    _refused(result, "01_RES: is read-only, so it cannot be replaced")
    assert tree_state(tmp_path) == before


def test_a_result_that_cannot_be_moved_aside_is_kept_and_nothing_is_left(synth_dataset: Path, tiny_model: Path,
                                                                         tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import ctc.fsutil

    data = _result_of_run(synth_dataset, tiny_model, tmp_path)
    real_replace = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if Path(src) == data / "01_RES":  # what a non-root user gets for a folder without write permission
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(src), None, str(dst))
        real_replace(src, dst)

    monkeypatch.setattr(ctc.fsutil.os, "replace", replace)
    before = tree_state(tmp_path)
    result = _invoke("run", data / "01", "--model", tiny_model, "--device", "cpu", "--overwrite")
    _refused(result, "01_RES: is read-only, so it cannot be replaced; it was left as it was")
    assert tree_state(tmp_path) == before  # no .01_RES.old-* or .tmp-* folder, the result unchanged
