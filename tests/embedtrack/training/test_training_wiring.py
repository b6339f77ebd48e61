"""Training wiring that only shows in the trained model: flip augmentation reaches the crops, and the epoch with
the best validation IoU (not the last one) is what the model folder keeps (paper §4.3)."""

from __future__ import annotations

import dataclasses

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

from ctc.conditions import measure
from embedtrack.training import loop as train_module
from embedtrack.training.crops import Augment, CropPairs
from embedtrack.training.data import TrackedSequence
from embedtrack.models.architecture import ArchConfig
from embedtrack.models.registry import WEIGHTS_NAME, read_config
from embedtrack.training.loop import TrainOptions, train

TINY_ARCH = ArchConfig(widths=(4, 8, 16), encoder_blocks=1, dilation_rounds=1)


def _l_shaped_cell(frames: int = 3, size: int = 32) -> TrackedSequence:
    """One L-shaped cell, the same in every frame: its 8 rotations and mirror images all differ."""
    m = np.zeros((size, size), np.uint16)
    m[6:20, 8:13] = 1
    m[16:20, 13:22] = 1
    labels = [m.copy() for _ in range(frames)]
    return TrackedSequence("01", [x.astype(np.float16) for x in labels], labels, {1: 0})


def _dihedral(a: np.ndarray) -> dict[tuple[int, bool], np.ndarray]:
    return {(k, flip): (np.rot90(a, k)[:, ::-1] if flip else np.rot90(a, k)) for k in range(4) for flip in (0, 1)}


def test_training_crops_are_mirrored_as_well_as_rotated() -> None:
    seq = _l_shaped_cell()
    no_warp = dataclasses.replace(Augment(), p_scale=0.0, p_elastic=0.0)  # exact copies of the cell to compare
    pairs = CropPairs([seq], 32, "train", None, no_warp, seed=0)
    variants = _dihedral(seq.labels[1].astype(np.int64))
    seen: list[tuple[int, bool]] = []
    for _ in range(300):
        pairs.resample()  # a new epoch: new augmentations (within an epoch a crop's are fixed by its index)
        lab = pairs[0]["labels_t"].numpy()
        seen += [key for key, v in variants.items() if np.array_equal(lab, v)]
    assert len(seen) >= 100  # most crops are a rotation or mirror image of the cell
    mirrored = sum(1 for _, flip in seen if flip)
    assert 0.25 < mirrored / len(seen) < 0.75  # about half the crops are mirrored
    assert set(seen) == set(variants)  # every rotation, with and without mirroring


def test_the_best_epoch_is_kept_not_the_last(tmp_path: Path, synth_dataset: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    scores = iter([0.5, 0.9, 0.3])
    snapshots: list[dict[str, torch.Tensor]] = []

    def scripted_validation(net: torch.nn.Module, *args: object) -> float:
        snapshots.append({k: v.detach().clone() for k, v in net.state_dict().items()})
        return next(scores)

    monkeypatch.setattr(train_module, "validate", scripted_validation)
    out = tmp_path / "model"
    options = TrainOptions(epochs=3, crops_per_epoch=2, batch_size=2, val_crops=1, device="cpu", lr=1e-2,
                           architecture=TINY_ARCH.to_dict())
    summary = train(synth_dataset, "synth-fluo", out, options)
    assert summary["best_val_iou"] == 0.9
    config = read_config(out)
    assert config.training["best_epoch"] == 2 and config.training["val_iou"] == 0.9
    all_frames = measure((tifffile.imread(f), tifffile.imread(f.parent.parent / "01_GT" / "TRA" / f"man_track{f.stem[1:]}.tif"))
                         for f in sorted((synth_dataset / "01").glob("t*.tif")))
    assert config.appearance is not None and all_frames is not None  # the training conditions, recorded
    assert config.appearance.cell_diameter == pytest.approx(all_frames.diameter_median, rel=0.1)
    assert config.appearance.snr == pytest.approx(all_frames.snr_median, rel=0.2)
    kept = torch.load(out / WEIGHTS_NAME, weights_only=True)
    changed = [k for k in kept if not torch.equal(snapshots[1][k], snapshots[2][k])]
    assert changed  # the third epoch did change the weights
    assert all(torch.equal(kept[k], snapshots[1][k]) for k in kept)
