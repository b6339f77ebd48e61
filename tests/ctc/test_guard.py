"""The output rule: never an input, only our own folders replaced, leftovers of killed runs cleaned up."""

from __future__ import annotations

import os
import string
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctc.errors import CTCUnsafeOutputError
from ctc.guard import (check_output, looks_like_model, looks_like_result, looks_like_synth_dataset,
                       remove_stale_temps)
from ctc.io import ResultWriter, temp_dir_beside
from ctc.lineage import Track
from tests.tree_state import tree_state


def _user_data(root: Path) -> Path:
    (root / "DS" / "01").mkdir(parents=True)
    (root / "DS" / "01" / "t000.tif").write_bytes(b"raw frame")
    (root / "DS" / "01_GT").mkdir()
    (root / "DS" / "01_GT" / "man_track.txt").write_text("1 0 0 0\n")
    return root / "DS"


@pytest.mark.parametrize("out,how", [("DS/01", "is"), ("DS", "contains"), (".", "contains"),
                                     ("DS/01/res", "lies inside")])
def test_output_overlapping_the_input_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: str,
                                                 how: str) -> None:
    _user_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    before = tree_state(tmp_path)
    with pytest.raises(CTCUnsafeOutputError, match=f"output {how} the input DS/01"):
        ResultWriter(Path(out), 3, overwrite=True, inputs=[Path("DS/01")])
    assert tree_state(tmp_path) == before


def test_symlinked_output_into_the_input_is_refused(tmp_path: Path) -> None:
    data = _user_data(tmp_path)
    (tmp_path / "link").symlink_to(data / "01")
    with pytest.raises(CTCUnsafeOutputError, match="is the input"):
        check_output(tmp_path / "link", [data / "01"], replace=True)


def test_overwrite_refuses_a_folder_that_is_not_a_result(tmp_path: Path) -> None:
    data = _user_data(tmp_path)
    before = tree_state(tmp_path)
    with pytest.raises(CTCUnsafeOutputError, match="does not look like a result folder .*man_track.txt"):
        ResultWriter(data / "01_GT", 3, overwrite=True, inputs=[data / "01"])
    assert tree_state(tmp_path) == before


def test_overwrite_replaces_a_result_folder(tmp_path: Path) -> None:
    out = tmp_path / "01_RES"
    for _ in range(2):
        with ResultWriter(out, 3, overwrite=True, inputs=[tmp_path / "01"]) as writer:
            writer.write_mask(0, np.ones((4, 4), np.uint16))
            writer.finish([Track(1, 0, 0, 0)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01_RES"]


_names = st.text(string.ascii_letters + string.digits + "._-", min_size=1, max_size=12).filter(
    lambda n: n not in (".", ".."))


@settings(max_examples=60, deadline=None)
@given(st.lists(_names, min_size=1, max_size=4, unique=True))
def test_only_our_files_make_a_folder_ours(names: list[str]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name in names:
            (folder / name).write_bytes(b"")
        ours_result = all(n == "res_track.txt" or (n.startswith("mask") and n.endswith(".tif")
                                                   and n[4:-4].isascii() and n[4:-4].isdigit()
                                                   and len(n[4:-4]) in (3, 4)) for n in names)
        assert looks_like_result(folder) == ours_result
        if "config.json" not in names and "weights.pt" not in names and any(not n.startswith(".") for n in names):
            assert not looks_like_model(folder) or set(names) <= {"checkpoint.pt", "train_log.jsonl"}
        if "synth.json" not in names:
            assert not looks_like_synth_dataset(folder)


def test_stale_temp_folders_of_dead_runs_are_removed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = tmp_path / "01_RES"
    dead = tmp_path / f".01_RES.tmp-{2 ** 22 + 12345}-abcd_123"  # above any pid the kernel hands out
    own_pid = tmp_path / f".01_RES.tmp-{os.getpid()}-zzzz0000"  # e.g. PID 1 of an earlier container
    alive = tmp_path / f".01_RES.tmp-{os.getppid()}-live0000"
    foreign = tmp_path / ".01_RES.tmp-notours"
    user = tmp_path / ".01_RES.tmp-1-abcdefgh.bak"
    for folder in (dead, own_pid, alive, foreign, user):
        folder.mkdir()
    caplog.set_level("WARNING")
    removed = remove_stale_temps(target)
    assert sorted(removed) == sorted([dead, own_pid])
    assert alive.is_dir() and foreign.is_dir() and user.is_dir()
    assert "left by an interrupted earlier run" in caplog.text


def test_previous_result_moved_aside_by_a_killed_run_is_put_back(tmp_path: Path) -> None:
    target = tmp_path / "01_RES"
    old = temp_dir_beside(target, "old")
    (old / "previous").mkdir()
    (old / "previous" / "res_track.txt").write_text("1 0 0 0\n")
    remove_stale_temps(target)
    assert (target / "res_track.txt").read_text() == "1 0 0 0\n"
    assert not old.exists()


def test_result_writer_cleans_up_before_writing(tmp_path: Path) -> None:
    stale = temp_dir_beside(tmp_path / "01_RES")
    (stale / "mask000.tif").write_bytes(b"partial")
    with ResultWriter(tmp_path / "01_RES", 3) as writer:
        assert not stale.exists()
        writer.write_mask(0, np.ones((4, 4), np.uint16))
        writer.finish([Track(1, 0, 0, 0)])


_parts = st.lists(st.sampled_from(["a", "b", "01", "01_RES"]), min_size=1, max_size=4)


@settings(max_examples=100, deadline=None)
@given(_parts, _parts)
def test_output_is_refused_exactly_when_it_overlaps_the_input(out_parts: list[str], in_parts: list[str]) -> None:
    root = Path("/nonexistent-root")
    out, source = root.joinpath(*out_parts), root.joinpath(*in_parts)
    overlaps = out_parts[:len(in_parts)] == in_parts or in_parts[:len(out_parts)] == out_parts
    try:
        check_output(out, [source])
    except CTCUnsafeOutputError as err:
        assert overlaps and str(source) in str(err)
    else:
        assert not overlaps
