"""Tests of ctc.io: frame discovery, lazy reading, errors, track files and the atomic result writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile

import ctc.io as cio
from ctc.errors import CTCError, CTCFormatError, CTCResultExistsError
from ctc.io import (ResultWriter, SequencePaths, find_sequences, frame_name, open_result, open_segmentation,
                    open_sequence, open_tracking_gt, read_tiff, read_track_file, write_tiff, write_track_file)
from ctc.lineage import Track
from tests.conftest import GT_TRACKS, N_FRAMES, SEG_FRAMES, gt_masks


def _frames(folder: Path, n: int, prefix: str = "t", start: int = 0, ndigits: int = 3,
            shape: tuple[int, int] = (8, 9)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(start, start + n):
        tifffile.imwrite(folder / frame_name(prefix, i, ndigits), np.full(shape, i, np.uint16))
    return folder


def test_frame_name() -> None:
    assert frame_name("mask", 7, 3) == "mask007.tif"
    assert frame_name("t", 1234, 4) == "t1234.tif"


@pytest.mark.parametrize("ndigits,start", [(3, 0), (4, 0), (3, 5)])
def test_open_sequence_reads_lazily(tmp_path: Path, ndigits: int, start: int,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _frames(tmp_path / "01", 4, start=start, ndigits=ndigits)
    seq = open_sequence(folder)
    assert seq.indices == list(range(start, start + 4))
    assert seq.ndigits == ndigits and seq.shape == (8, 9) and seq.dtype == np.uint16 and len(seq) == 4
    assert [f.name for f in seq.files] == [frame_name("t", i, ndigits) for i in seq.indices]
    calls: list[Path] = []
    real = cio.read_tiff
    monkeypatch.setattr(cio, "read_tiff", lambda p: calls.append(Path(p)) or real(p))
    frames = iter(seq)
    first = next(frames)
    assert len(calls) == 1 and int(first[0, 0]) == start
    assert int(seq.read(2)[0, 0]) == start + 2 and int(seq.read_index(start + 3)[0, 0]) == start + 3


def test_open_sequence_decodes_no_pixels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _frames(tmp_path / "01", 3)

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("pixel data decoded while opening")

    monkeypatch.setattr(tifffile, "imread", fail)
    assert len(open_sequence(folder)) == 3


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(CTCFormatError, match=r"01: folder not found"):
        open_sequence(tmp_path / "01")


def test_no_tif_files(tmp_path: Path) -> None:
    (tmp_path / "01").mkdir()
    (tmp_path / "01" / "notes.txt").write_text("x")
    with pytest.raises(CTCFormatError, match=r"01: no tNNN.tif files"):
        open_sequence(tmp_path / "01")


def test_gap_names_missing_frame(tmp_path: Path) -> None:
    folder = _frames(tmp_path / "01", 5)
    (folder / "t002.tif").unlink()
    with pytest.raises(CTCFormatError, match=r"01: frame numbers have gaps, missing t002.tif") as err:
        open_sequence(folder)
    assert str(folder) in str(err.value)


def test_gaps_allowed_for_sparse_segmentation(tmp_path: Path) -> None:
    folder = tmp_path / "SEG"
    _frames(folder, 1, prefix="man_seg", start=3)
    _frames(folder, 1, prefix="man_seg", start=9)
    assert open_segmentation(folder).indices == [3, 9]


def test_different_shapes(tmp_path: Path) -> None:
    folder = _frames(tmp_path / "01", 3)
    tifffile.imwrite(folder / "t001.tif", np.zeros((8, 10), np.uint16))
    with pytest.raises(CTCFormatError, match=r"t001.tif: frame has shape \(8, 10\), but t000.tif has \(8, 9\)"):
        open_sequence(folder)


def test_3d_stack(tmp_path: Path) -> None:
    folder = _frames(tmp_path / "01", 2)
    tifffile.imwrite(folder / "t001.tif", np.zeros((3, 8, 9), np.uint16), photometric="minisblack")
    with pytest.raises(CTCFormatError, match=r"t001.tif: is a stack of 3 images, expected a single 2-D frame"):
        open_sequence(folder)
    with pytest.raises(CTCFormatError, match=r"t001.tif: is a stack of 3 images, expected a single 2-D frame"):
        read_tiff(folder / "t001.tif")


def test_rgb_frame_rejected(tmp_path: Path) -> None:
    folder = _frames(tmp_path / "01", 1)
    tifffile.imwrite(folder / "t000.tif", np.zeros((8, 9, 3), np.uint8), photometric="rgb")
    with pytest.raises(CTCFormatError, match=r"t000.tif: image has shape \(8, 9, 3\), expected a 2-D frame"):
        open_sequence(folder)


def test_unreadable_tiff(tmp_path: Path) -> None:
    folder = _frames(tmp_path / "01", 2)
    (folder / "t001.tif").write_bytes(b"this is not a tiff")
    with pytest.raises(CTCFormatError, match=r"t001.tif: not a readable TIFF file"):
        open_sequence(folder)
    with pytest.raises(CTCFormatError, match=r"t001.tif: not a readable TIFF file"):
        read_tiff(folder / "t001.tif")


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_truncated_tiff(tmp_path: Path, compression: str | None) -> None:
    folder = _frames(tmp_path / "01", 2, shape=(64, 64))
    path = folder / "t001.tif"
    tifffile.imwrite(path, np.random.default_rng(0).integers(0, 999, (64, 64)).astype(np.uint16),
                     compression=compression)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CTCFormatError, match=r"t001.tif: truncated TIFF"):
        open_sequence(folder)
    with pytest.raises(CTCFormatError, match=r"t001.tif: not a readable TIFF file"):
        read_tiff(path)


def test_frame_replaced_after_opening(tmp_path: Path) -> None:
    folder = _frames(tmp_path / "01", 2)
    seq = open_sequence(folder)
    tifffile.imwrite(folder / "t001.tif", np.zeros((4, 4), np.uint16))
    with pytest.raises(CTCFormatError, match=r"t001.tif: frame has shape \(4, 4\), the sequence has \(8, 9\)"):
        seq.read(1)


def test_read_tiff_squeezes_singleton(tmp_path: Path) -> None:
    tifffile.imwrite(tmp_path / "a.tif", np.ones((1, 5, 6), np.uint8))
    assert read_tiff(tmp_path / "a.tif").shape == (5, 6)


def test_write_tiff_label_dtypes(tmp_path: Path) -> None:
    write_tiff(tmp_path / "a.tif", np.arange(12, dtype=np.int32).reshape(3, 4))
    back = read_tiff(tmp_path / "a.tif")
    assert back.dtype == np.uint16 and back.tolist() == np.arange(12).reshape(3, 4).tolist()
    write_tiff(tmp_path / "b.tif", np.ones((3, 4), np.uint8))
    assert read_tiff(tmp_path / "b.tif").dtype == np.uint8
    with pytest.raises(CTCFormatError, match=r"c.tif: labels range 0..70000 does not fit uint16"):
        write_tiff(tmp_path / "c.tif", np.array([[0, 70000]], np.int64))
    with pytest.raises(CTCFormatError, match=r"d.tif: cannot write an image of shape \(2, 2, 2\)"):
        write_tiff(tmp_path / "d.tif", np.zeros((2, 2, 2), np.uint16))


def test_track_file_round_trip(tmp_path: Path) -> None:
    write_track_file(tmp_path / "res_track.txt", reversed(GT_TRACKS))
    assert read_track_file(tmp_path / "res_track.txt") == sorted(GT_TRACKS, key=lambda t: t.label)
    assert (tmp_path / "res_track.txt").read_text().splitlines()[0] == "1 0 4 0"


@pytest.mark.parametrize("bad", ["1 0 4", "1 0 x 0", "1 0 4 0 7", "1 -2 4 0"])
def test_malformed_track_line(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "man_track.txt"
    path.write_text(f"1 0 4 0\n\n{bad}\n")
    with pytest.raises(CTCFormatError) as err:
        read_track_file(path)
    assert str(path) in str(err.value) and "line 3" in str(err.value) and repr(bad) in str(err.value)


def test_missing_track_file(tmp_path: Path) -> None:
    with pytest.raises(CTCFormatError, match=r"man_track.txt: track file not found"):
        read_track_file(tmp_path / "man_track.txt")


def test_dataset_helpers(dataset: Path) -> None:
    assert find_sequences(dataset) == ["01", "02"]
    paths = SequencePaths(dataset, "01")
    seq, tracks = open_tracking_gt(paths.gt_tra)
    assert len(seq) == N_FRAMES and tracks == GT_TRACKS
    assert open_segmentation(paths.gt_seg).indices == list(SEG_FRAMES)
    assert len(open_segmentation(paths.st_seg)) == N_FRAMES
    assert open_sequence(paths.raw).dtype == np.uint8
    assert paths.res == dataset / "01_RES"
    with pytest.raises(CTCFormatError, match="no sequence folders"):
        find_sequences(paths.gt)


# ------------------------------------------------------------------------------------------- ResultWriter


def _write(target: Path, ndigits: int = 3, overwrite: bool = False) -> Path:
    with ResultWriter(target, ndigits, overwrite=overwrite) as writer:
        for t, m in enumerate(gt_masks()):
            writer.write_mask(t, m.astype(np.int32))
        return writer.finish(GT_TRACKS)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_result_writer_writes_ctc_folder(tmp_path: Path) -> None:
    target = _write(tmp_path / "01_RES", ndigits=4)
    assert sorted(p.name for p in target.iterdir()) == [f"mask{t:04d}.tif" for t in range(N_FRAMES)] + [
        "res_track.txt"]
    seq, tracks = open_result(target)
    assert seq.dtype == np.uint16 and tracks == GT_TRACKS
    assert all(np.array_equal(a, b) for a, b in zip(seq, gt_masks()))
    assert _leftovers(tmp_path) == []


def test_result_writer_never_clobbers(tmp_path: Path) -> None:
    target = tmp_path / "01_RES"
    target.mkdir()
    (target / "res_track.txt").write_text("old")
    with pytest.raises(CTCResultExistsError, match=r"01_RES: exists; use --overwrite"):
        ResultWriter(target, 3)
    assert (target / "res_track.txt").read_text() == "old"
    _write(target, overwrite=True)
    assert (target / "res_track.txt").read_text() != "old"
    assert _leftovers(tmp_path) == []


def test_result_writer_exception_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "01_RES"
    with pytest.raises(RuntimeError):
        with ResultWriter(target, 3) as writer:
            writer.write_mask(0, gt_masks()[0])
            assert writer.temp_dir.name.startswith(".01_RES.tmp-")
            raise RuntimeError("interrupted")
    assert not target.exists() and _leftovers(tmp_path) == []


def test_result_writer_invalid_lineage_leaves_target(tmp_path: Path) -> None:
    target = tmp_path / "01_RES"
    target.mkdir()
    (target / "res_track.txt").write_text("old")
    with pytest.raises(CTCError, match=r"violates the CTC rules: .*label 4: parent 1 ends at frame 4"):
        with ResultWriter(target, 3, overwrite=True) as writer:
            for t, m in enumerate(gt_masks()):
                writer.write_mask(t, m)
            writer.finish([*GT_TRACKS[:3], Track(4, 2, 4, 1), GT_TRACKS[4]])
    assert (target / "res_track.txt").read_text() == "old" and _leftovers(tmp_path) == []


def test_result_writer_missing_frame_and_no_finish(tmp_path: Path) -> None:
    with pytest.raises(CTCError, match=r"masks for frames \[1\] were not written"):
        with ResultWriter(tmp_path / "a", 3) as writer:
            writer.write_mask(0, gt_masks()[0])
            writer.write_mask(2, gt_masks()[2])
            writer.finish([])
    with pytest.raises(CTCError, match=r"closed without finish"):
        with ResultWriter(tmp_path / "b", 3) as writer:
            writer.write_mask(0, gt_masks()[0])
    assert _leftovers(tmp_path) == [] and not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_result_writer_rejects_bad_masks(tmp_path: Path) -> None:
    with ResultWriter(tmp_path / "r", 3) as writer:
        with pytest.raises(CTCFormatError, match=r"mask000.tif: labels range"):
            writer.write_mask(0, np.full((4, 4), 70000, np.int64))
        writer.write_mask(0, np.ones((4, 4), np.uint16))
        with pytest.raises(CTCFormatError, match=r"mask001.tif: mask has shape \(4, 5\)"):
            writer.write_mask(1, np.ones((4, 5), np.uint16))
        with pytest.raises(CTCError, match=r"frame 0 written twice"):
            writer.write_mask(0, np.ones((4, 4), np.uint16))
        writer.finish([Track(1, 0, 0, 0)])


def test_result_writer_keeps_empty_frame(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    masks = gt_masks()
    masks[4][:] = 0
    tracks = [Track(t.label, t.begin, min(t.end, 3), t.parent) for t in GT_TRACKS]
    with ResultWriter(tmp_path / "r", 3) as writer:
        for t, m in enumerate(masks):
            writer.write_mask(t, m)
        writer.finish(tracks)
    assert writer.empty_frames == [4]
    assert "frame 4 has no cells" in caplog.text
    assert not read_tiff(tmp_path / "r" / "mask004.tif").any()
