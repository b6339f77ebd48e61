"""`open_frames` on zarr: a T×Y×X array, an OME-Zarr image (TCZYX with one channel and one plane), a group with one
array; one error for other shapes, for a group of several arrays, and when zarr is not installed."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ctc.errors import CTCFormatError
from ctc.frames import open_frames, sequence_name

FRAMES = np.arange(5 * 12 * 10, dtype=np.uint16).reshape(5, 12, 10)


def write_array(path: Path, data: np.ndarray) -> Any:
    zarr = pytest.importorskip("zarr")
    array = zarr.open(str(path), mode="w", shape=data.shape, dtype=data.dtype, chunks=(1, *data.shape[1:]))
    array[...] = data
    return array


def write_ome(path: Path, data: np.ndarray, axes: str = "tczyx") -> None:
    """An OME-Zarr (0.4) image: the group's ``multiscales`` and its full-resolution array ``0``."""
    zarr = pytest.importorskip("zarr")
    group = zarr.open_group(str(path), mode="w")
    kinds = {"t": "time", "c": "channel"}
    group.attrs["multiscales"] = [{"version": "0.4", "datasets": [{"path": "0"}], "axes": [
        {"name": a, "type": kinds.get(a, "space")} for a in axes]}]
    write_array(path / "0", data)


def test_a_zarr_array_is_read_frame_by_frame(tmp_path: Path) -> None:
    write_array(tmp_path / "movie.zarr", FRAMES)
    frames = open_frames(tmp_path / "movie.zarr")
    assert frames.kind == "zarr" and frames.indices == list(range(5)) and frames.shape == (12, 10)
    assert frames.dtype == np.uint16 and sequence_name(tmp_path / "movie.zarr") == "movie"
    np.testing.assert_array_equal(np.stack(list(frames)), FRAMES)


def test_ome_zarr_takes_its_time_axis_and_drops_channel_and_z(tmp_path: Path) -> None:
    write_ome(tmp_path / "movie.ome.zarr", FRAMES[:, None, None])
    frames = open_frames(tmp_path / "movie.ome.zarr")
    assert len(frames) == 5 and frames.shape == (12, 10) and sequence_name(tmp_path / "movie.ome.zarr") == "movie"
    np.testing.assert_array_equal(frames.read(3), FRAMES[3])
    write_ome(tmp_path / "late.ome.zarr", FRAMES.transpose(1, 0, 2)[None], axes="cytx")  # time declared third
    late = open_frames(tmp_path / "late.ome.zarr")
    assert late.shape == (12, 10) and len(late) == 5
    np.testing.assert_array_equal(late.read(2), FRAMES[2])
    write_ome(tmp_path / "one.ome.zarr", FRAMES[:1, None, None])
    with pytest.raises(CTCFormatError, match="one.ome.zarr: a single 2-D image"):
        open_frames(tmp_path / "one.ome.zarr")


def test_a_group_with_one_array_and_the_shapes_refused(tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    write_array(tmp_path / "g.zarr" / "raw", FRAMES)
    np.testing.assert_array_equal(open_frames(tmp_path / "g.zarr").read(4), FRAMES[4])
    write_array(tmp_path / "g.zarr" / "labels", FRAMES)
    with pytest.raises(CTCFormatError, match=r"g.zarr: a zarr group with 2 arrays \(labels, raw\)"):
        open_frames(tmp_path / "g.zarr")
    write_array(tmp_path / "still.zarr", FRAMES[0])
    with pytest.raises(CTCFormatError, match="still.zarr: a single 2-D image; expected a CTC sequence folder"):
        open_frames(tmp_path / "still.zarr")
    write_array(tmp_path / "channels.zarr", np.stack([FRAMES, FRAMES], axis=1))
    with pytest.raises(CTCFormatError, match=r"channels.zarr: zarr array of shape \(5, 2, 12, 10\);.*split"):
        open_frames(tmp_path / "channels.zarr")


def test_without_zarr_the_error_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "movie.zarr"
    store.mkdir()
    (store / "zarr.json").write_text('{"zarr_format": 3, "node_type": "array"}')
    monkeypatch.setitem(sys.modules, "zarr", None)  # import zarr fails
    with pytest.raises(CTCFormatError, match=r"movie.zarr: a zarr store; reading it needs the optional extra 'zarr'"):
        open_frames(store)
    with pytest.raises(CTCFormatError, match="or a T×Y×X zarr array"):
        open_frames(tmp_path / "missing.zarr")


def test_chunks_are_capped_before_decoding(tmp_path: Path) -> None:
    """A 5×160×160 array stored as one 5×20000×20000 chunk would decode 2·10⁹ pixels to read one frame."""
    zarr = pytest.importorskip("zarr")
    zarr.open(str(tmp_path / "huge.zarr"), mode="w", shape=(5, 160, 160), dtype="uint16", chunks=(5, 20000, 20000))
    with pytest.raises(CTCFormatError, match=r"huge.zarr: its chunks of 5 x 20000 x 20000 pixels would decode "
                                             r"2,000,000,000 pixels, more than the limit"):
        open_frames(tmp_path / "huge.zarr")


def test_a_billion_frames_are_refused_naming_the_store(tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    zarr.open(str(tmp_path / "long.zarr"), mode="w", shape=(10**9, 160, 160), dtype="uint8", chunks=(1, 160, 160))
    with pytest.raises(CTCFormatError, match=r"long.zarr: 1,000,000,000 frames, more than the 10,000"):
        open_frames(tmp_path / "long.zarr")


@pytest.mark.parametrize("kind", ["fifo", "device", "dangling"])
def test_a_chunk_that_is_no_regular_file_is_refused_without_blocking(tmp_path: Path, kind: str) -> None:
    import os

    write_array(tmp_path / "movie.zarr", FRAMES)
    chunk = next(p for p in sorted((tmp_path / "movie.zarr").rglob("*")) if p.is_file() and p.name.isdigit())
    chunk.unlink()
    if kind == "fifo":
        os.mkfifo(chunk)
    else:
        chunk.symlink_to("/dev/zero" if kind == "device" else tmp_path / "gone")
    with pytest.raises(CTCFormatError, match=rf"movie.zarr: {chunk.relative_to(tmp_path / 'movie.zarr')} is"):
        open_frames(tmp_path / "movie.zarr")


@pytest.mark.parametrize("multiscales,message", [
    ("0", r"'multiscales' is str, expected a list of images"),
    ([{"datasets": [{"path": "missing"}]}], r"dataset path 'missing' not found in the store"),
    ([{"datasets": [{"path": "../other"}]}], r"names dataset path '../other'; expected a relative path inside"),
    ([{"datasets": "0"}], r"has no 'datasets' list"),
])
def test_ome_metadata_errors_name_the_store(tmp_path: Path, multiscales: Any, message: str) -> None:
    zarr = pytest.importorskip("zarr")
    write_array(tmp_path / "other", FRAMES)
    group = zarr.open_group(str(tmp_path / "movie.ome.zarr"), mode="w")
    group.attrs["multiscales"] = multiscales
    write_array(tmp_path / "movie.ome.zarr" / "0", FRAMES)
    with pytest.raises(CTCFormatError, match=rf"movie.ome.zarr: OME-Zarr .*{message}"):
        open_frames(tmp_path / "movie.ome.zarr")


def test_a_geff_segmentation_is_checked_like_any_frames(tmp_path: Path) -> None:
    """The napari reader's geff segmentation goes through the same checks: a FIFO chunk is named, not read."""
    import os

    pytest.importorskip("geff")
    from ctc import export
    from ctc.geff_read import read_geff
    from tests.conftest import GT_TRACKS, gt_masks

    store = export.write_geff(export.track_table(gt_masks(), GT_TRACKS), gt_masks(), tmp_path / "r.geff.zarr")
    chunk = store / "segmentation" / "3.0.0"
    chunk.unlink()
    os.mkfifo(chunk)
    with pytest.raises(CTCFormatError, match=r"segmentation: 3.0.0 is not a regular file"):
        read_geff(store)


def test_a_fifo_metadata_file_or_a_linked_folder_is_refused_before_zarr_opens_it(tmp_path: Path) -> None:
    import os

    write_ome(tmp_path / "movie.ome.zarr", FRAMES[:, None, None])
    attrs = next(p for p in (tmp_path / "movie.ome.zarr").iterdir() if p.name in (".zattrs", "zarr.json"))
    attrs.unlink()
    os.mkfifo(attrs)
    with pytest.raises(CTCFormatError, match=rf"movie.ome.zarr: {attrs.name} is not a regular file"):
        open_frames(tmp_path / "movie.ome.zarr")
    write_array(tmp_path / "linked.zarr", FRAMES)
    (tmp_path / "linked.zarr" / "c").rename(tmp_path / "chunks")
    (tmp_path / "linked.zarr" / "c").symlink_to(tmp_path / "chunks")
    with pytest.raises(CTCFormatError, match=r"linked.zarr: c is a link to a folder"):
        open_frames(tmp_path / "linked.zarr")
