"""`embedtrack download` against hostile archives and a full disk: one message, the user's files untouched."""

from __future__ import annotations

import errno
import os
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

import embedtrack.io.download
from embedtrack.cli import main
from embedtrack.io.download import unpack
from tests.tree_state import tree_state

NAME = "PhC-C2DL-PSC"


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return path


def _download(root: Path, *extra: str) -> Result:
    """Unpack ``root/<NAME>-training.zip`` (an earlier download is reused, so nothing goes to the network)."""
    return CliRunner().invoke(main, ["download", NAME, "--root", str(root), "--no-checksum", *extra])


def _one_error(result: Result, *needles: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    for needle in needles:
        assert needle in result.output, result.output


def test_zip_bomb_is_refused_before_extraction_and_kept(tmp_path: Path) -> None:
    zip_path = _zip(tmp_path / f"{NAME}-training.zip", {f"{NAME}/01/t000.tif": bytes(50_000_000)})
    assert zip_path.stat().st_size < 100_000
    before = tree_state(tmp_path)
    result = _download(tmp_path, "--max-unpacked-gb", "0.01")
    _one_error(result, str(zip_path), "unpacks to 0.1 GB, more than the limit of 0.01 GB", "--max-unpacked-gb")
    assert tree_state(tmp_path) == before


def test_limit_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    zip_path = _zip(tmp_path / "a.zip", {f"{NAME}/01/t000.tif": bytes(2_000_000)})
    monkeypatch.setenv("EMBEDTRACK_MAX_UNPACKED_GB", "0.001")
    with pytest.raises(embedtrack.io.download.UnpackSizeError, match="EMBEDTRACK_MAX_UNPACKED_GB"):
        unpack(zip_path, tmp_path, NAME)
    monkeypatch.setenv("EMBEDTRACK_MAX_UNPACKED_GB", "0.01")
    assert (unpack(zip_path, tmp_path, NAME) / "01" / "t000.tif").stat().st_size == 2_000_000


def test_more_than_the_free_space_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _zip(tmp_path / f"{NAME}-training.zip", {f"{NAME}/01/t000.tif": bytes(1_000_000)})
    monkeypatch.setattr(embedtrack.io.download.shutil, "disk_usage", lambda path: type("Usage", (), {"free": 10_000}))
    result = _download(tmp_path)
    _one_error(result, "unpacks to 0.0 GB, but only 0.0 GB are free")
    assert not (tmp_path / NAME).exists()


def test_full_disk_during_extraction_is_one_line_and_leaves_nothing(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _zip(tmp_path / f"{NAME}-training.zip", {f"{NAME}/01/t000.tif": b"x" * 1000, f"{NAME}/01/t001.tif": b"y"})

    def full(self: zipfile.ZipFile, member: zipfile.ZipInfo, path: str) -> str:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), os.path.join(path, member.filename))

    monkeypatch.setattr(zipfile.ZipFile, "extract", full)
    result = _download(tmp_path)
    _one_error(result, "t000.tif: No space left on device (the disk is full")
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{NAME}-training.zip"]


def test_overwrite_keeps_a_dataset_folder_holding_more_than_sequences(tmp_path: Path) -> None:
    _zip(tmp_path / f"{NAME}-training.zip", {f"{NAME}/01/t000.tif": b"new"})
    (tmp_path / NAME / "01_RES").mkdir(parents=True)
    (tmp_path / NAME / "01_RES" / "res_track.txt").write_text("1 0 0 0\n")
    before = tree_state(tmp_path / NAME)
    result = _download(tmp_path, "--overwrite")
    _one_error(result, "does not look like a CTC dataset folder", "01_RES")
    assert tree_state(tmp_path / NAME) == before
