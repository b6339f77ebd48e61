"""embedtrack.io.show (pure rendering, streamed GIF) and embedtrack.cli.show.show_result on a synthetic result."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image

from ctc.errors import CTCFormatError
from ctc.lineage import Track
from embedtrack.cli.show import show_result
from embedtrack.errors import EmbedTrackError
from embedtrack.io.show import (
    N_TRACK_COLORS,
    GifStream,
    centroids,
    intensity_range,
    outlines,
    render_lineage,
    render_overlay,
    to_uint8,
    track_color,
)

# a cell (1) moving right, a cell (2) that divides into 3 and 4 at frame 3
TRACKS = [Track(1, 0, 5, 0), Track(2, 0, 2, 0), Track(3, 3, 5, 2), Track(4, 3, 5, 2)]


def synthetic_result(root: Path, shape: tuple[int, int] = (60, 90), n: int = 6) -> tuple[Path, Path]:
    """Raw frames t000.. (uint16 blobs on noise) and a result folder mask000.. + res_track.txt."""
    rng = np.random.default_rng(3)
    raw, res = root / "01", root / "01_RES"
    raw.mkdir(parents=True)
    res.mkdir()
    for t in range(n):
        labels = np.zeros(shape, np.uint16)
        labels[10:20, 5 + 3 * t : 15 + 3 * t] = 1
        if t < 3:
            labels[35:50, 50:65] = 2
        else:
            labels[30:40, 50:65] = 3
            labels[45:55, 50:65] = 4
        image = rng.normal(200, 20, shape) + 800 * (labels > 0)
        tifffile.imwrite(raw / f"t{t:03d}.tif", image.astype(np.uint16))
        tifffile.imwrite(res / f"mask{t:03d}.tif", labels)
    (res / "res_track.txt").write_text("".join(f"{t}\n" for t in TRACKS))
    return res, raw


def color_mask(rgb: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
    return np.all(rgb == np.array(color, np.uint8), axis=2)


# ------------------------------------------------------------------------------------------------ colours


def test_track_colors_are_stable_distinct_and_saturated() -> None:
    assert track_color(7) == track_color(7) == track_color(7 + N_TRACK_COLORS)
    colors = np.array([track_color(k) for k in range(1, N_TRACK_COLORS + 1)], dtype=int)
    assert len({tuple(c) for c in colors}) == N_TRACK_COLORS
    assert (colors.max(axis=1) - colors.min(axis=1)).min() > 60  # never grey: outlines stand out from the frame
    consecutive = np.abs(np.diff(colors, axis=0)).sum(axis=1)
    assert consecutive.min() > 100  # neighbouring ids are easy to tell apart


# ------------------------------------------------------------------------------------------------- frames


def test_outlines_are_the_border_of_each_instance() -> None:
    labels = np.zeros((8, 10), np.uint16)
    labels[2:6, 1:5] = 1
    labels[2:6, 5:8] = 2  # touches 1
    edge = outlines(labels)
    assert not edge[labels == 0].any()
    assert not edge[3:5, 2:4].any()  # interior of 1
    assert edge[2, 1:5].all() and edge[5, 1:5].all() and edge[2:6, 1].all()
    assert edge[2:6, 4].all() and edge[2:6, 5].all()  # contact between the two cells


def test_centroids_and_areas() -> None:
    labels = np.zeros((10, 10), np.uint16)
    labels[0:2, 0:4] = 3
    labels[9, 9] = 5
    found = centroids(labels)
    assert set(found) == {3, 5}
    assert found[3] == pytest.approx((0.5, 1.5, 8))
    assert found[5] == pytest.approx((9.0, 9.0, 1))
    assert centroids(np.zeros((4, 4), np.uint16)) == {}


def test_intensity_range_and_uint8_mapping() -> None:
    image = np.arange(10001, dtype=np.float64).reshape(1, -1)
    lo, hi = intensity_range([image], 1, 99)
    assert (lo, hi) == pytest.approx((100, 9900))
    mapped = to_uint8(np.array([[0.0, 50.0, 100.0, 200.0]]), (0.0, 100.0))
    assert mapped.tolist() == [[0, 128, 255, 255]]
    assert to_uint8(np.full((3, 3), 7.0)).dtype == np.uint8  # flat frame: no division by zero


def test_render_overlay_outlines_in_track_colors() -> None:
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 1000, (40, 50))
    labels = np.zeros((40, 50), np.uint16)
    labels[5:15, 5:15] = 9
    labels[20:35, 25:45] = 70
    rgb = render_overlay(image, labels, value_range=(0, 1000), draw_ids=False)
    assert rgb.shape == (40, 50, 3) and rgb.dtype == np.uint8
    for label in (9, 70):
        edge = outlines(labels) & (labels == label)
        assert color_mask(rgb, track_color(label))[edge].all()
    inside = ~outlines(labels)
    gray = to_uint8(image, (0, 1000))
    assert np.array_equal(rgb[inside], np.repeat(gray[inside][:, None], 3, axis=1))


def test_render_overlay_writes_ids_beside_cells() -> None:
    image = np.zeros((120, 160))
    labels = np.zeros((120, 160), np.uint16)
    labels[50:70, 30:50] = 12
    plain = render_overlay(image, labels, draw_ids=False)
    text = render_overlay(image, labels)
    changed = np.argwhere(np.any(plain != text, axis=2))
    assert changed.size > 0
    rows, cols = changed[:, 0], changed[:, 1]
    assert 20 <= rows.min() and rows.max() <= 75 and 30 <= cols.min() and cols.max() <= 110  # near the cell
    assert color_mask(text, track_color(12))[changed[:, 0], changed[:, 1]].any()


def test_render_overlay_downscales_large_frames() -> None:
    image = np.random.default_rng(1).uniform(size=(600, 1100))
    labels = np.zeros((600, 1100), np.uint16)
    labels[100:300, 200:500] = 5
    rgb = render_overlay(image, labels, max_size=512, draw_ids=False)
    assert rgb.shape == (279, 512, 3)
    assert color_mask(rgb, track_color(5)).sum() > 100
    small = render_overlay(image[:100, :200], labels[:100, :200], max_size=512)
    assert small.shape == (100, 200, 3)  # never upscaled


def test_render_overlay_rejects_mismatched_shapes() -> None:
    with pytest.raises(EmbedTrackError, match="same shape"):
        render_overlay(np.zeros((4, 5)), np.zeros((5, 4), np.uint16))


# ------------------------------------------------------------------------------------------------ lineage


def _extent(picture: np.ndarray, label: int) -> tuple[int, int, int, int]:
    """(first row, last row, first col, last col) of the pixels in a track's colour."""
    found = np.argwhere(color_mask(picture, track_color(label)))
    return found[:, 0].min(), found[:, 0].max(), found[:, 1].min(), found[:, 1].max()


def test_render_lineage_lines_and_division_connectors() -> None:
    picture = render_lineage(TRACKS, 6, width=600)
    assert picture.ndim == 3 and picture.shape[1] == 600 and picture.dtype == np.uint8
    r1, _, c1_start, c1_end = _extent(picture, 1)
    r2, r2_end, c2_start, c2_end = _extent(picture, 2)
    r3, _, c3_start, c3_end = _extent(picture, 3)
    r4, _, c4_start, _ = _extent(picture, 4)
    assert c1_start == c2_start and c1_end == c3_end  # tracks 1, 2 start at frame 0; 1, 3 end at frame 5
    assert c2_end - c2_start == pytest.approx((c1_end - c1_start) * 3 / 6, abs=3)  # 2 spans frames 0-2 of 0-5
    assert c3_start == c4_start == pytest.approx(c1_start + (c1_end - c1_start) * 3 / 6, abs=3)
    assert r1 < r2 < r3 < r4  # depth first: the daughters right below their mother
    assert r2_end >= r4 - 2  # the mother's colour runs down to the lower daughter: the division connector
    mother = color_mask(picture, track_color(2))
    centre = int(np.flatnonzero(mother[:, c2_start]).mean())  # middle of the mother's line
    assert mother[centre:r3, c3_start].all()  # the connector runs from the mother's line down to the daughter


def test_render_lineage_orphans_cycles_and_empty() -> None:
    orphan = render_lineage([Track(5, 2, 4, 99)], 6)
    assert color_mask(orphan, track_color(5)).any()
    cyclic = render_lineage([Track(1, 0, 2, 2), Track(2, 3, 4, 1)], 5)  # invalid input must not hang
    assert color_mask(cyclic, track_color(1)).any() and color_mask(cyclic, track_color(2)).any()
    empty = render_lineage([], 10)
    assert empty.shape[0] > 0 and empty.shape[1] == 900


# ---------------------------------------------------------------------------------------------------- GIF


@pytest.mark.parametrize("local_tables", [False, True])
def test_gif_stream_roundtrip(local_tables: bool) -> None:
    rng = np.random.default_rng(2)
    frames = []
    for k in range(3):
        gray = rng.integers(0, 256, (30, 40), dtype=np.uint8)
        rgb = np.repeat(gray[:, :, None], 3, axis=2)
        rgb[5 + k, 5:20] = track_color(k + 1)
        frames.append(rgb)
    handle = io.BytesIO()
    gif = GifStream(handle, fps=4)
    gif.add(frames[0])
    assert handle.tell() > 30 * 40 // 4  # written at once, not buffered until the end
    if local_tables:  # later frames then carry their own colour table
        gif.global_table = b""
    for rgb in frames[1:]:
        gif.add(rgb)
    gif.close()
    handle.seek(0)
    with Image.open(handle) as im:
        assert im.n_frames == 3 and im.size == (40, 30)
        assert im.info["loop"] == 0 and im.info["duration"] == 250
        for k in range(3):
            im.seek(k)
            decoded = np.asarray(im.convert("RGB")).astype(int)
            assert np.abs(decoded - frames[k]).max() <= 1  # 192 grey levels: at most one step off
            assert color_mask(decoded.astype(np.uint8), track_color(k + 1))[5 + k, 5:20].all()


def test_gif_stream_errors() -> None:
    gif = GifStream(io.BytesIO())
    with pytest.raises(EmbedTrackError, match="no frames"):
        gif.close()
    gif.add(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(EmbedTrackError, match="size"):
        gif.add(np.zeros((10, 12, 3), np.uint8))


# ------------------------------------------------------------------------------------------ show_result


def test_show_result_writes_gif_and_lineage(tmp_path: Path) -> None:
    res, raw = synthetic_result(tmp_path)
    out = tmp_path / "pics" / "result.gif"
    written = show_result(res, raw, out, tmp_path / "pics" / "tree.png", fps=10)
    assert written == (out, tmp_path / "pics" / "tree.png")
    with Image.open(out) as im:
        assert im.n_frames == 6 and im.size == (90, 60) and im.info["duration"] == 100
        im.seek(4)
        frame = np.asarray(im.convert("RGB"))
    labels = tifffile.imread(res / "mask004.tif")
    for label in (1, 3, 4):
        assert color_mask(frame, track_color(label))[outlines(labels) & (labels == label)].mean() > 0.8
    with Image.open(tmp_path / "pics" / "tree.png") as tree:
        assert tree.format == "PNG" and tree.mode == "RGB"
        for label in (1, 2, 3, 4):
            assert color_mask(np.asarray(tree), track_color(label)).any()
    assert sorted(p.name for p in out.parent.iterdir()) == ["result.gif", "tree.png"]


def test_show_result_max_frames_downscale_and_gt_folder(tmp_path: Path) -> None:
    res, raw = synthetic_result(tmp_path, shape=(80, 700))
    tra = tmp_path / "01_GT" / "TRA"
    tra.mkdir(parents=True)
    for f in sorted(res.glob("mask*.tif")):
        (tra / f.name.replace("mask", "man_track")).write_bytes(f.read_bytes())
    (tra / "man_track.txt").write_text((res / "res_track.txt").read_text())
    out, lineage = show_result(tra, raw, tmp_path / "gt.gif", None, max_frames=2, max_size=350)
    assert lineage is None
    with Image.open(out) as im:
        assert im.n_frames == 2 and im.size == (350, 40)


def test_show_result_errors_write_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    res, raw = synthetic_result(tmp_path)
    out_dir = tmp_path / "out"
    with pytest.raises(EmbedTrackError, match=r"\.gif"):
        show_result(res, raw, out_dir / "x.avi")
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)  # as if not installed
    with pytest.raises(EmbedTrackError, match="imageio-ffmpeg"):
        show_result(res, raw, out_dir / "x.mp4")
    (res / "mask005.tif").unlink()
    (raw / "t000.tif").unlink()
    with pytest.raises(CTCFormatError, match="no raw frame"):
        show_result(res, raw, out_dir / "x.gif")
    (res / "res_track.txt").unlink()
    with pytest.raises(CTCFormatError, match="res_track.txt"):
        show_result(res, raw, out_dir / "x.gif")
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_show_result_shape_mismatch(tmp_path: Path) -> None:
    res, _ = synthetic_result(tmp_path / "a", shape=(60, 90))
    _, raw = synthetic_result(tmp_path / "b", shape=(60, 80))
    with pytest.raises(CTCFormatError, match=r"\(60, 90\).*\(60, 80\)"):
        show_result(res, raw, tmp_path / "x.gif")


@pytest.mark.skipif(importlib.util.find_spec("imageio_ffmpeg") is None, reason="optional imageio-ffmpeg missing")
def test_show_result_mp4(tmp_path: Path) -> None:
    res, raw = synthetic_result(tmp_path)
    out, _ = show_result(res, raw, tmp_path / "x.mp4")
    assert out.stat().st_size > 0


def test_render_lineage_with_hundreds_of_tracks_draws_whole_lineages_with_divisions_first() -> None:
    from embedtrack.io.show import select_lineages

    singles = [Track(k, 0, 9, 0) for k in range(1, 401)]
    tree = [Track(401, 0, 4, 0), Track(402, 5, 9, 401), Track(403, 5, 9, 401)]
    gap = [Track(404, 0, 3, 0), Track(405, 5, 9, 404)]  # a link across a gap is no division
    kept, note = select_lineages(singles + tree + gap, 40)
    assert kept[:3] == tree and len(kept) == 40 and all(t in kept for t in gap)
    assert note.startswith("showing 37 of 402 lineages") and "365 tracks" in note
    assert select_lineages(tree, 40) == (tree, "")
    tall = render_lineage(singles + tree + gap, 10, max_tracks=40)
    assert tall.shape[0] < render_lineage(singles + tree + gap, 10, max_tracks=1000).shape[0]
