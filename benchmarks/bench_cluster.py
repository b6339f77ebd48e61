"""Clustering benchmark on perfect predictions built from real masks.

For every mask of ``Fluo-N2DL-HeLa/02_ERR_SEG`` (700 x 1100) a 1024 x 1024 frame is composed (the top 1024
columns, completed below by the mirrored bottom rows, whose objects get new labels). Perfect predictions are
derived from it: every pixel of an object is offset to the object's medoid (its pixel nearest to the centroid),
seediness is 0.9 inside objects and 0 outside, and the bandwidth makes the kernel equal to 0.5 at 4 px.
:func:`embedtrack.inference.cluster.cluster` must then recover every object (matched by IoU > 0.5).

Usage::

    python benchmarks/bench_cluster.py [--data DIR] [--scale 256] [--min-size 20] [--torch [--device cuda]]
        [--split]

Prints objects found vs present and the median seconds per frame (goal: <= 0.1 s). ``--torch`` also clusters
every frame from torch tensors already on ``--device`` (the per-pixel stage runs there), right after the NumPy
path on the same maps (interleaved, so both see the same machine load), and checks that the labels are equal.
``--split`` times the per-pixel stage and the loop over the candidates separately. Like the ``embedtrack``
command, ``--torch`` sets ``OMP_WAIT_POLICY=PASSIVE`` unless a policy is set: on a shared CPU, spinning OpenMP
threads make the torch stage many times slower.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

from ctc.labels import label_set, unique_inverse
from ctc.overlap import overlaps
from embedtrack.inference import cluster_dense
from embedtrack.inference.cluster import cluster, labels_from
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.models.predictions import Predictions

DEFAULT_DATA = Path("/work/shared/data/ctc/Fluo-N2DL-HeLa/02_ERR_SEG")
SIZE = 1024
KERNEL_HALF_PX = 4.0


def compose(mask: np.ndarray, size: int = SIZE) -> np.ndarray:
    """A ``size x size`` label image from ``mask``: top-left crop, completed below by mirrored rows (relabelled)."""
    crop = mask[:size, :size].astype(np.int64)
    if crop.shape[1] < size:
        raise SystemExit(f"mask is only {mask.shape[1]} px wide, need {size}")
    missing = size - crop.shape[0]
    if missing > 0:
        extra = np.flipud(crop[-missing:])
        extra = np.where(extra > 0, extra + int(crop.max()), 0)
        crop = np.concatenate([crop, extra], axis=0)
    return unique_inverse(crop)[1]  # 0 stays 0 because background is present


def perfect_predictions(
    labels: np.ndarray, scale: float, w_s: float = -10.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets to each object's medoid, seediness 0.9 / 0, bandwidth with kernel 0.5 at ``KERNEL_HALF_PX``."""
    h, w = labels.shape
    flat = labels.reshape(-1)
    fg = np.flatnonzero(flat)
    lab = flat[fg]
    rows, cols = np.divmod(fg, w)
    n = int(lab.max()) + 1
    cnt = np.bincount(lab, minlength=n).astype(np.float64)
    cnt[cnt == 0] = 1
    my = np.bincount(lab, rows, minlength=n) / cnt
    mx = np.bincount(lab, cols, minlength=n) / cnt
    d2 = (rows - my[lab]) ** 2 + (cols - mx[lab]) ** 2
    order = np.lexsort((d2, lab))
    first = order[np.r_[True, lab[order][1:] != lab[order][:-1]]]
    centre_r = np.zeros(n, dtype=np.int64)
    centre_c = np.zeros(n, dtype=np.int64)
    centre_r[lab[first]] = rows[first]
    centre_c[lab[first]] = cols[first]
    offsets = np.zeros((2, h, w), dtype=np.float32)
    offsets[0].reshape(-1)[fg] = (centre_r[lab] - rows) / scale
    offsets[1].reshape(-1)[fg] = (centre_c[lab] - cols) / scale
    seediness = np.where(labels > 0, 0.9, 0.0).astype(np.float32)
    s = (KERNEL_HALF_PX / scale) ** 2 / math.log(2.0)  # exp(-(4/scale)^2 / s) = 0.5
    bandwidths = np.full((2, h, w), math.log(s) / w_s, dtype=np.float32)
    return offsets, bandwidths, seediness


def matched(gt: np.ndarray, pred: np.ndarray) -> tuple[int, int, int]:
    """(objects present, predicted instances, ground-truth objects matched by a prediction with IoU > 0.5)."""
    table = overlaps(gt, pred)
    hits = np.unique(table.a[table.iou() > 0.5])
    return len(label_set(gt)), len(label_set(pred)), len(hits)


class Variant:
    """One way of clustering a frame (NumPy arrays, or tensors on a device), with its timings."""

    def __init__(self, device: str | None) -> None:
        self.device = device
        self.name = "numpy" if device is None else f"torch-{device}"
        self.total: list[float] = []
        self.dense: list[float] = []
        self.loop: list[float] = []

    def inputs(self, maps: tuple[np.ndarray, ...]) -> Predictions:
        """The maps as this path receives them (tensors already on the device, as the network leaves them)."""
        if self.device is None:
            return Predictions(*maps)
        import torch

        return Predictions(*(torch.from_numpy(m).to(self.device) for m in maps))

    def _sync(self) -> None:
        if self.device is not None and self.device.startswith("cuda"):
            import torch

            torch.cuda.synchronize(self.device)

    def run(self, pred: Predictions, params: InferenceConfig, split: bool) -> np.ndarray:
        """Cluster ``pred`` and record the time (and, with ``split``, the per-pixel stage's and the loop's)."""
        self._sync()
        if not split:
            t0 = time.perf_counter()
            labels = cluster(pred, params)
            self.total.append(time.perf_counter() - t0)
            return labels
        t0 = time.perf_counter()
        dense = self._dense_stage(pred, params)
        t1 = time.perf_counter()
        labels = labels_from(dense, params)
        t2 = time.perf_counter()
        self.dense.append(t1 - t0)
        self.loop.append(t2 - t1)
        self.total.append(t2 - t0)
        return labels

    def _dense_stage(self, pred: Predictions, params: InferenceConfig) -> cluster_dense.Dense:
        maps = (pred.offsets, pred.bandwidths, pred.seediness)
        if self.device is None:
            dense = cluster_dense.dense_stage(*maps, params)
        else:
            from embedtrack.inference import cluster_torch

            dense = cluster_torch.dense_stage(*maps, params)
        if dense is None:
            raise SystemExit("a frame without candidate centres: nothing to time")
        return dense

    def summary(self) -> str:
        text = f"{self.name}: median {statistics.median(self.total):.4f} s, max {max(self.total):.4f}"
        if self.dense:
            text += (f" (per-pixel stage median {statistics.median(self.dense):.4f} s, "
                     f"loop {statistics.median(self.loop):.4f} s)")
        return text


def frame(path: Path, min_size: int) -> tuple[np.ndarray, int]:
    """The composed ground-truth frame of one mask file, without the pieces smaller than the minimum size (cut
    at the crop border: not objects the clustering keeps), and how many such pieces were removed."""
    gt = compose(tifffile.imread(path))
    sizes = np.bincount(gt.reshape(-1))
    small = np.flatnonzero(sizes[1:] < min_size) + 1
    dropped = int((sizes[small] > 0).sum())
    return (np.where(np.isin(gt, small), 0, gt) if small.size else gt), dropped


def run_frames(files: list[Path], variants: list[Variant], params: InferenceConfig, split: bool
               ) -> tuple[int, int, int, int, int]:
    """Cluster every frame with every variant (after a warm-up); objects present, predicted, matched, frames
    whose labels differ between the variants, border pieces dropped."""
    maps = perfect_predictions(frame(files[0], params.min_size)[0], params.coord_scale, params.w_s)
    for p in variants:  # warm-up: imports, first allocations on the device
        p.run(p.inputs(maps), params, False)
        p.total.clear()
    tot_present = tot_pred = tot_match = mismatches = dropped = 0
    for path in files:
        gt, n_dropped = frame(path, params.min_size)
        dropped += n_dropped
        maps = perfect_predictions(gt, params.coord_scale, params.w_s)
        results = [p.run(p.inputs(maps), params, split) for p in variants]
        mismatches += sum(not np.array_equal(results[0], r) for r in results[1:])
        present, n_pred, n_match = matched(gt, results[0])
        tot_present += present
        tot_pred += n_pred
        tot_match += n_match
        times = ", ".join(f"{p.name} {p.total[-1]:.4f} s" for p in variants)
        print(f"{path.name}: present {present}, predicted {n_pred}, matched {n_match}, {times}")
    return tot_present, tot_pred, tot_match, mismatches, dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with maskNNN.tif files")
    parser.add_argument("--scale", type=float, default=256.0, help="pixels per normalised unit")
    parser.add_argument("--min-size", type=int, default=20, help="minimum instance size (px)")
    parser.add_argument("--torch", action="store_true", help="also cluster from torch tensors (interleaved)")
    parser.add_argument("--device", default="cpu", help="device of the tensors with --torch (cpu, cuda, cuda:1)")
    parser.add_argument("--split", action="store_true", help="time the per-pixel stage and the loop separately")
    args = parser.parse_args(argv)

    if not args.data.is_dir() or not any(args.data.glob("mask*.tif")):
        print(f"error: no mask*.tif files in {args.data} (pass --data DIR)", file=sys.stderr)
        return 2
    if args.torch:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # read when torch starts
    params = InferenceConfig(min_size=args.min_size, coord_scale=args.scale)
    files = sorted(args.data.glob("mask*.tif"))
    variants = [Variant(None)] + ([Variant(args.device)] if args.torch else [])
    tot_present, tot_pred, tot_match, mismatches, dropped = run_frames(files, variants, params, args.split)
    print(f"frames: {len(files)} of {SIZE}x{SIZE} (scale {args.scale:g}, min size {args.min_size}, "
          f"{dropped} border pieces < min size ignored)")
    print(f"objects: present {tot_present}, predicted {tot_pred}, matched (IoU > 0.5) {tot_match}")
    print("seconds per frame (goal <= 0.1): " + "; ".join(p.summary() for p in variants))
    if args.torch:
        print(f"frames whose torch labels differ from the NumPy ones: {mismatches}")
    return 0 if tot_match == tot_present and mismatches == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
