"""Atomic file and folder writing: the target appears only when complete and survives a failed write."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ctc.errors import CTCResultExistsError
from ctc.fsutil import atomic_path, move_into_place, temp_dir_beside, write_atomic


class Planted(Exception):
    pass


def test_write_atomic_writes_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.bin"
    write_atomic(target, lambda f: f.write(b"one"))
    write_atomic(target, lambda f: f.write(b"two"))
    assert target.read_bytes() == b"two"
    assert os.listdir(target.parent) == ["file.bin"]


def test_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "file.bin"
    target.write_bytes(b"old")

    def half(handle) -> None:  # type: ignore[no-untyped-def]
        handle.write(b"ha")
        raise Planted

    with pytest.raises(Planted):
        write_atomic(target, half)
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["file.bin"]


def test_atomic_path_keeps_suffix_and_plain_permissions(tmp_path: Path) -> None:
    target = tmp_path / "movie.gif"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".gif" and tmp.name.startswith(".")
        assert not target.exists()
        tmp.write_bytes(b"GIF")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_move_into_place_replaces_a_folder_and_leaves_nothing_else(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "a.txt").write_text("a")
    source = temp_dir_beside(target)
    assert source.parent == tmp_path and source.name.startswith(".out.tmp-")
    (source / "b.txt").write_text("b")
    move_into_place(source, target, overwrite=True)
    assert os.listdir(target) == ["b.txt"]
    assert os.listdir(tmp_path) == ["out"]


def test_move_into_place_refuses_an_existing_target_without_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    source = temp_dir_beside(target)
    with pytest.raises(CTCResultExistsError, match="out"):
        move_into_place(source, target)
    assert (target / "keep.txt").read_text() == "mine"
    assert source.is_dir()


def test_failed_swap_puts_the_old_folder_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    source = temp_dir_beside(target)
    real = os.replace

    def failing(src: object, dst: object) -> None:
        if Path(str(src)) == source:
            raise OSError("planted")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", failing)
    with pytest.raises(OSError, match="planted"):
        move_into_place(source, target, overwrite=True)
    assert (target / "keep.txt").read_text() == "mine"
    assert sorted(os.listdir(tmp_path)) == sorted(["out", source.name])
