"""Atomic file and folder writing: the target appears only when complete and survives a failed write."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from ctc import fsutil
from ctc.errors import CTCResultExistsError, CTCUnsafeOutputError
from ctc.fsutil import atomic_path, land_together, move_into_place, set_aside, temp_dir_beside, write_atomic


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


def _read_only(target: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Renaming ``target`` fails as for a user without write permission on that folder (tests run as root)."""
    real = os.replace

    def replace(src: str | Path, dst: str | Path) -> None:
        if Path(src) == target:
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(src), None, str(dst))
        real(src, dst)

    monkeypatch.setattr(fsutil.os, "replace", replace)


def test_a_read_only_result_is_kept_and_nothing_is_left_beside_it(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    target, new = tmp_path / "01_RES", temp_dir_beside(tmp_path / "01_RES")
    target.mkdir()
    (target / "mask000.tif").write_bytes(b"old")
    _read_only(target, monkeypatch)
    with pytest.raises(CTCUnsafeOutputError, match=r"01_RES: is read-only, so it cannot be replaced; it was left"):
        land_together([(new, target)])
    assert sorted(os.listdir(tmp_path)) == sorted(["01_RES", new.name])  # no .01_RES.old-* folder
    assert (target / "mask000.tif").read_bytes() == b"old"


def test_set_aside_of_a_read_only_folder_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "model"
    target.mkdir()
    (target / "weights.pt").write_bytes(b"old")
    _read_only(target, monkeypatch)
    with pytest.raises(CTCUnsafeOutputError, match="model: is read-only"), set_aside(target):
        raise AssertionError("the block must not run")
    assert os.listdir(tmp_path) == ["model"] and (target / "weights.pt").read_bytes() == b"old"
