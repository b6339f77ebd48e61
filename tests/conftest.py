"""Tiny hand-made CTC datasets and results (32x32 frames with squares) shared by the tests."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import tifffile

from ctc.lineage import Track

SIZE = 32
N_FRAMES = 5

# label -> {frame: (row, col, side)}; track 2 divides into 3 and 4 at frame 2, track 5 enters at frame 3.
SQUARES: dict[int, dict[int, tuple[int, int, int]]] = {
    1: {t: (2, 2 + 2 * t, 5) for t in range(N_FRAMES)},
    2: {0: (14, 14, 6), 1: (15, 15, 6)},
    3: {t: (11 - t, 12, 4) for t in range(2, N_FRAMES)},
    4: {t: (19 + t, 20, 4) for t in range(2, N_FRAMES)},
    5: {3: (26, 2, 4), 4: (26, 4, 4)},
}
GT_TRACKS = [Track(1, 0, 4, 0), Track(2, 0, 1, 0), Track(3, 2, 4, 2), Track(4, 2, 4, 2), Track(5, 3, 4, 0)]
SEG_FRAMES = (1, 3)


def gt_masks() -> list[np.ndarray]:
    """The ground-truth label images of the hand-made sequence (uint16)."""
    masks = [np.zeros((SIZE, SIZE), np.uint16) for _ in range(N_FRAMES)]
    for label, frames in SQUARES.items():
        for t, (r, c, s) in frames.items():
            masks[t][r:r + s, c:c + s] = label
    return masks


def write_result(folder: Path, masks: list[np.ndarray], tracks: list[Track] | list[str],
                 first: int = 0, ndigits: int = 3) -> Path:
    """Write a result folder directly (no checks), so that broken results can be planted."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, m in enumerate(masks):
        tifffile.imwrite(folder / f"mask{first + i:0{ndigits}d}.tif", m)
    lines = [t if isinstance(t, str) else f"{t.label} {t.begin} {t.end} {t.parent}" for t in tracks]
    (folder / "res_track.txt").write_text("".join(line + "\n" for line in lines))
    return folder


def write_dataset(root: Path, seq: str = "01", with_gt: bool = True, with_st: bool = True) -> Path:
    """Write ``root/<seq>/tNNN.tif`` and optionally ``<seq>_GT/{TRA,SEG}`` and ``<seq>_ST/SEG``."""
    rng = np.random.default_rng(0)
    masks = gt_masks()
    raw = root / seq
    raw.mkdir(parents=True)
    for t, m in enumerate(masks):
        image = (40 + 120 * (m > 0) + rng.normal(0, 5, m.shape)).clip(0, 255).astype(np.uint8)
        tifffile.imwrite(raw / f"t{t:03d}.tif", image)
    if with_gt:
        tra = root / f"{seq}_GT" / "TRA"
        seg = root / f"{seq}_GT" / "SEG"
        tra.mkdir(parents=True)
        seg.mkdir(parents=True)
        for t, m in enumerate(masks):
            tifffile.imwrite(tra / f"man_track{t:03d}.tif", m)
            if t in SEG_FRAMES:
                tifffile.imwrite(seg / f"man_seg{t:03d}.tif", m)
        (tra / "man_track.txt").write_text("".join(f"{t}\n" for t in GT_TRACKS))
    if with_st:
        st = root / f"{seq}_ST" / "SEG"
        st.mkdir(parents=True)
        for t, m in enumerate(masks):  # silver truth: labels not consistent over time
            perm = np.concatenate([[0], rng.permutation(np.arange(10, 16))]).astype(np.uint16)
            tifffile.imwrite(st / f"man_seg{t:03d}.tif", perm[m])
    return root


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A dataset folder with sequence 01 (raw, GT/TRA, sparse GT/SEG, ST/SEG) and 02 (raw + ST only)."""
    root = tmp_path / "DS"
    write_dataset(root, "01")
    write_dataset(root, "02", with_gt=False)
    return root


@pytest.fixture
def gt_result(tmp_path: Path) -> Path:
    """The ground truth written as a result folder (``maskNNN.tif`` + ``res_track.txt``)."""
    return write_result(tmp_path / "01_RES", gt_masks(), GT_TRACKS)


@pytest.fixture
def result_factory(tmp_path: Path) -> Callable[..., Path]:
    """``make(name, masks, tracks)`` writes a result folder under tmp_path."""

    def make(name: str, masks: list[np.ndarray], tracks: list[Track] | list[str], **kw: int) -> Path:
        return write_result(tmp_path / name, masks, tracks, **kw)

    return make
