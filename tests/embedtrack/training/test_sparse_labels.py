"""Tests of the sparse label source: TRA markers on every frame, SEG outlines on some
(embedtrack.training.sparse_labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import ndimage

from ctc.io import TRACK_FILE_GT, write_tiff, write_track_file
from ctc.lineage import Track
from ctc.synth import generate_sequence
from embedtrack.inference.cluster import cluster
from embedtrack.training.crops import CropPairs
from embedtrack.training.data import links_for, load_dataset, min_mask_size
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.training.losses import Instances, embedtrack_loss, position_grid, segmentation_loss, LossWeights
from embedtrack.training.metrics import matched_iou
from embedtrack.models.architecture import ArchConfig, EmbedTrackNet
from embedtrack.models.predictions import Predictions
from embedtrack.inference.preprocess import normalise
from embedtrack.models.presets import get_preset
from embedtrack.training.sparse_labels import IGNORE, labels_from_markers, labels_from_outlines

SPARSE = get_preset("Fluo-N2DH-GOWT1")


def _disc(shape: tuple[int, int], centre: tuple[int, int], radius: float) -> np.ndarray:
    rows, cols = np.ogrid[: shape[0], : shape[1]]
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius ** 2


def eroded_markers(masks: np.ndarray, share: float = 0.5) -> np.ndarray:
    """Markers as the CTC ships them: each mask eroded to about ``share`` of its area."""
    out = np.zeros_like(masks)
    for label in np.unique(masks[masks > 0]):
        cell = masks == label
        marker = cell
        while marker.sum() > share * cell.sum():
            smaller = ndimage.binary_erosion(marker)
            if not smaller.any():
                break
            marker = smaller
        out[marker] = label
    return out


# ------------------------------------------------------------------------------------------- label images

def test_markers_only_frame_keeps_marker_ids_and_an_unknown_ring_that_holds_the_cell() -> None:
    cell = _disc((64, 64), (30, 30), 12)
    markers = np.where(_disc((64, 64), (30, 30), 12 / np.sqrt(2)), 7, 0)  # half of the cell's area
    labels = labels_from_markers(markers)
    assert labels.dtype == np.uint16
    assert np.array_equal(labels == 7, markers == 7)
    assert (labels[cell] > 0).all()  # every cell pixel: its id or unknown, never background
    assert labels[0, 0] == 0 and labels[63, 63] == 0  # far background stays known background
    assert (labels == IGNORE).any()


def test_grow_fill_gives_bright_ring_pixels_to_the_marker() -> None:
    cell = _disc((64, 64), (30, 30), 12)
    image = np.where(cell, 1.0, 0.05).astype(np.float32)
    markers = np.where(_disc((64, 64), (30, 30), 8), 3, 0)
    grown = labels_from_markers(markers, image, "grow")
    assert (grown[cell] == 3).mean() > 0.95
    assert not (grown[~cell] == 3).any()
    with pytest.raises(ValueError, match="fill"):
        labels_from_markers(markers, image, "guess")


def test_outlined_frame_names_objects_and_leaves_the_unnamed_unknown() -> None:
    seg = np.zeros((48, 48), np.uint16)
    markers = np.zeros((48, 48), np.int64)
    seg[5:15, 5:15] = 100  # outlined, with marker 4
    markers[8:12, 8:12] = 4
    seg[30:40, 5:15] = 200  # outlined, no marker
    markers[30:34, 30:34] = 9  # marker of a cell the outlines skip
    labels, kept, dropped = labels_from_outlines(seg, markers)
    assert (kept, dropped) == (1, 1)
    assert (labels[5:15, 5:15] == 4).all()
    assert (labels[30:40, 5:15] == IGNORE).all()
    assert (labels[30:34, 30:34] == 9).all() and labels[29, 32] == IGNORE  # marker + ring, like markers-only


# ------------------------------------------------------------------------------------------- losses

def test_segmentation_loss_gives_unknown_pixels_no_gradient_and_background_some() -> None:
    labels = torch.zeros((32, 32), dtype=torch.int64)
    labels[10:18, 10:18] = 3
    labels[6:22, 6:10] = IGNORE
    positions = position_grid(32, 32, 32.0)
    seg = torch.randn(5, 32, 32, requires_grad=True)
    inst = Instances.from_labels(labels, positions)
    assert inst.ids.tolist() == [3]
    loss, _, _ = segmentation_loss(seg, inst, positions, LossWeights())
    loss.backward()
    grad = seg.grad.abs().sum(0)
    assert float(grad[labels == IGNORE].max()) == 0.0
    assert float(grad[0, 0]) > 0.0 and float(grad[labels == 3].sum()) > 0.0


def test_links_and_counts_never_treat_unknown_as_a_cell() -> None:
    lab_t = np.zeros((8, 8), np.uint16)
    lab_p = np.zeros((8, 8), np.uint16)
    lab_t[0:2, 0:2], lab_p[0:2, 0:2] = 5, 5
    lab_t[5:8, 5:8], lab_p[5:8, 5:8] = IGNORE, IGNORE
    assert links_for(lab_t, lab_p, {}).tolist() == [[5, 5]]


# ------------------------------------------------------------------------------------------- dataset

def write_sparse_dataset(root: Path, frames: int = 12, every: int = 3, seed: int = 3) -> tuple[Path, list]:
    """A synthetic CTC dataset as the CTC ships real data: eroded markers on every frame, outlines on every
    ``every``-th frame (with their own label values). Returns the dataset folder and the true masks."""
    seq = generate_sequence("fluo", frames=frames, size=(96, 96), seed=seed)
    for sub in ("01", "01_GT/TRA", "01_GT/SEG"):
        (root / sub).mkdir(parents=True)
    for t, (image, mask) in enumerate(zip(seq.images, seq.masks)):
        write_tiff(root / "01" / f"t{t:03d}.tif", image)
        write_tiff(root / "01_GT" / "TRA" / f"man_track{t:03d}.tif", eroded_markers(mask).astype(np.uint16))
        if t % every == 0:
            write_tiff(root / "01_GT" / "SEG" / f"man_seg{t:03d}.tif", np.where(mask > 0, mask + 1000, 0)
                       .astype(np.uint16))
    write_track_file(root / "01_GT" / "TRA" / TRACK_FILE_GT, seq.tracks)
    return root, seq.masks


def test_sparse_dataset_outlines_markers_and_a_held_out_block_of_outlined_frames(tmp_path: Path) -> None:
    root, masks = write_sparse_dataset(tmp_path / "Fluo-N2DH-GOWT1", frames=13, every=3)
    (seq,) = load_dataset(root, SPARSE)
    assert seq.outlined == [t % 3 == 0 for t in range(13)]
    assert seq.heldout == (9, 13)  # the last quarter of the 5 outlined frames (9, 12) and what lies between
    assert all(t < 9 for t in seq.pair_times("train"))
    assert seq.pair_times("val") == [9, 12]
    assert np.array_equal(seq.labels[3] > 0, masks[3] > 0)  # outlined: the full masks, under the track ids
    assert set(np.unique(seq.labels[3])) - {0} == set(np.unique(masks[3])) - {0}
    assert (seq.labels[4] == IGNORE).any() and ((seq.labels[4] > 0) & (seq.labels[4] < IGNORE)).sum() < (
        masks[4] > 0).sum()
    assert min_mask_size([seq]) >= 1
    val = CropPairs([seq], 64, "val")
    assert {ref.t for ref in val.refs} <= {9, 12}
    assert "outlines on 5 frames" in str(seq.report)


def test_sparse_preset_names_the_missing_outline_folder(tmp_path: Path) -> None:
    root, _ = write_sparse_dataset(tmp_path / "Fluo-N2DH-GOWT1", frames=4)
    for f in (root / "01_GT" / "SEG").iterdir():
        f.unlink()
    (root / "01_GT" / "SEG").rmdir()
    with pytest.raises(Exception, match=r"01_GT/SEG.*outlines"):
        load_dataset(root, SPARSE)


# ------------------------------------------------------------------------------------------- learning

def _train_tiny(images: list[np.ndarray], labels: list[np.ndarray], steps: int) -> EmbedTrackNet:
    """A tiny network trained on the pairs (t-1, t) of a short sequence with the given labels."""
    torch.manual_seed(0)
    net = EmbedTrackNet(ArchConfig(widths=(8, 16, 32), encoder_blocks=1, dilation_rounds=1,
                                   dropout_low=0.0, dropout_high=0.0))
    img = torch.stack([torch.from_numpy(normalise(f))[None] for f in images])
    lab = torch.stack([torch.from_numpy(m.astype(np.int64)) for m in labels])
    links = [torch.from_numpy(links_for(labels[t], labels[t - 1], {})) for t in range(1, len(images))]
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(steps):
        seg_t, seg_p, track = net(img[1:], img[:-1])
        loss, _ = embedtrack_loss(seg_t, seg_p, track, lab[1:], lab[:-1], links, 64.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return net.eval()


def _iou_on(net: EmbedTrackNet, image: np.ndarray, truth: np.ndarray) -> float:
    with torch.no_grad():
        seg = net.decode_seg(net.encode(torch.from_numpy(normalise(image))[None, None]))[0].numpy()
    pred = cluster(Predictions.from_maps(seg), InferenceConfig(coord_scale=64.0, min_size=5))
    total, n = matched_iou(pred, truth)
    return total / max(n, 1)


@pytest.mark.slow
def test_a_model_trained_on_markers_and_sparse_outlines_recovers_full_outlines() -> None:
    """Frames 1 and 2 have markers only (half a cell's area); frames 0 and 3 outlines. Trained with the
    unknown ring, the network outlines whole cells on frame 2; trained on the markers as if they were whole
    cells, it outlines markers (the ring is what makes the difference)."""
    seq = generate_sequence("fluo", frames=4, size=(64, 64), seed=5)
    markers = [eroded_markers(m) for m in seq.masks]
    sparse = [seq.masks[0].astype(np.uint16), labels_from_markers(markers[1]), labels_from_markers(markers[2]),
              seq.masks[3].astype(np.uint16)]
    naive = [seq.masks[0], markers[1], markers[2], seq.masks[3]]
    marker_iou = matched_iou(markers[2], seq.masks[2])
    with_ring = _iou_on(_train_tiny(seq.images, sparse, 150), seq.images[2], seq.masks[2])
    without = _iou_on(_train_tiny(seq.images, naive, 150), seq.images[2], seq.masks[2])
    assert marker_iou[0] / marker_iou[1] < 0.6
    assert with_ring > 0.8
    assert with_ring > without + 0.1



def test_an_empty_outline_frame_beside_marked_cells_is_named(tmp_path: Path) -> None:
    """An all-zero SEG frame where the markers mark cells is refused naming the file, not reported later as
    training data without masks."""
    from ctc.errors import CTCFormatError

    root, masks = write_sparse_dataset(tmp_path / "Fluo-N2DH-GOWT1", frames=13, every=3)
    write_tiff(root / "01_GT" / "SEG" / "man_seg003.tif", np.zeros_like(masks[3], dtype=np.uint16))
    with pytest.raises(CTCFormatError, match=r"SEG/man_seg003.tif: holds no outlines, but man_track003.tif marks "
                                             rf"{len(np.unique(masks[3])) - 1} cells"):
        load_dataset(root, SPARSE)
