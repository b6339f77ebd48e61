"""Clustering benchmark on perfect predictions built from real masks.

For every mask of ``Fluo-N2DL-HeLa/02_ERR_SEG`` (700 x 1100) a 1024 x 1024 frame is composed (the top 1024
columns, completed below by the mirrored bottom rows, whose objects get new labels). Perfect predictions are
derived from it: every pixel of an object is offset to the object's medoid (its pixel nearest to the centroid),
seediness is 0.9 inside objects and 0 outside, and the bandwidth makes the kernel equal to 0.5 at 4 px.
:func:`embedtrack.cluster.cluster` must then recover every object (matched by IoU > 0.5).

Usage::

    python benchmarks/bench_cluster.py [--data DIR] [--scale 256] [--min-size 20]

Prints objects found vs present and the median seconds per frame (goal: <= 0.1 s).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

from ctc.labels import label_set, unique_inverse
from ctc.overlap import overlaps
from embedtrack.cluster import cluster
from embedtrack.inference_config import InferenceConfig
from embedtrack.predictions import Predictions

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with maskNNN.tif files")
    parser.add_argument("--scale", type=float, default=256.0, help="pixels per normalised unit")
    parser.add_argument("--min-size", type=int, default=20, help="minimum instance size (px)")
    args = parser.parse_args(argv)

    files = sorted(args.data.glob("mask*.tif"))
    if not args.data.is_dir() or not files:
        print(f"error: no mask*.tif files in {args.data} (pass --data DIR)", file=sys.stderr)
        return 2
    params = InferenceConfig(min_size=args.min_size, coord_scale=args.scale)
    times: list[float] = []
    tot_present = tot_pred = tot_match = dropped = 0
    for path in files:
        gt = compose(tifffile.imread(path))
        # Pieces smaller than the minimum size (cut at the crop border) are not objects the clustering keeps.
        sizes = np.bincount(gt.reshape(-1))
        small = np.flatnonzero(sizes[1:] < args.min_size) + 1
        dropped += int((sizes[small] > 0).sum())
        if small.size:
            gt = np.where(np.isin(gt, small), 0, gt)
        offsets, bandwidths, seediness = perfect_predictions(gt, args.scale, params.w_s)
        t0 = time.perf_counter()
        pred = cluster(Predictions(offsets, bandwidths, seediness), params)
        times.append(time.perf_counter() - t0)
        present, n_pred, n_match = matched(gt, pred)
        tot_present += present
        tot_pred += n_pred
        tot_match += n_match
        print(f"{path.name}: present {present}, predicted {n_pred}, matched {n_match}, {times[-1]:.4f} s")
    print(f"frames: {len(files)} of {SIZE}x{SIZE} (scale {args.scale:g}, min size {args.min_size}, "
          f"{dropped} border pieces < min size ignored)")
    print(f"objects: present {tot_present}, predicted {tot_pred}, matched (IoU > 0.5) {tot_match}")
    print(f"seconds per frame: median {statistics.median(times):.4f}, max {max(times):.4f} (goal <= 0.1)")
    return 0 if tot_match == tot_present else 1


if __name__ == "__main__":
    sys.exit(main())
