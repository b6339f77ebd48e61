"""Linking given masks: embedtrack's tracking offsets (paper §3.4 on the user's instances) against laptrack and
plain overlap linking, on the same masks.

A fresh synthetic fluorescence sequence (never used in training) is written with its ground truth; the GT masks
with their identities removed (a random relabelling per frame) are the given masks. Each linker turns them
into a CTC result, scored with py-ctcmetrics (TRA, LNK, BC(0)) against the ground truth:

* ``embedtrack run SEQ --masks MASKS`` (``run_sequence`` with ``RunOptions(masks=…)``, bundled model);
* laptrack (LAP linking of the mask centroids, splitting allowed, no gap closing or merging — CTC tracks cannot
  merge) at a few distance cut-offs;
* overlap: each mask follows the mask at t-1 it overlaps most (IoU ≥ 0.1; two claimants = a division), the
  classical baseline's linker.

    python benchmarks/bench_masks.py [--frames 30] [--size 384] [--seed 9101] [--model Fluo-N2DH-SIM+]

laptrack is needed for its rows only (``pip install laptrack``); without it the script says so and skips them.
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import baseline  # noqa: E402

from ctc.evaluate import evaluate  # noqa: E402
from ctc.io import frame_name, open_sequence, open_tracking_gt, write_tiff  # noqa: E402
from ctc.synth import write_dataset  # noqa: E402
from embedtrack.models.inference_config import InferenceConfig  # noqa: E402
from embedtrack.io.pipeline import RunOptions, run_sequence  # noqa: E402
from ctc.export import label_stats  # noqa: E402
from embedtrack.inference.tracker import Tracker, relabel_mask  # noqa: E402

METRICS = ("TRA", "LNK", "BC(0)")
Links = dict[int, int]


def anonymous_masks(tra_dir: Path, out: Path, seed: int) -> list[np.ndarray]:
    """The GT masks with identities removed (random labels per frame), written as ``maskNNN.tif``."""
    seq, _ = open_tracking_gt(tra_dir)
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True)
    masks = []
    for i, index in enumerate(seq.indices):
        m = relabel_mask(seq.read(i), str(seq.files[i]))
        lut = np.concatenate([[0], rng.permutation(int(m.max())) + 1]).astype(np.uint16)
        masks.append(lut[m])
        write_tiff(out / frame_name("mask", index, seq.ndigits), masks[-1])
    return masks


def laptrack_links(masks: list[np.ndarray], max_distance: float) -> list[Links]:
    """Per frame ``{label at t: label at t-1}`` from laptrack on the mask centroids (splits allowed)."""
    from laptrack import LapTrack

    stats = [label_stats(m) for m in masks]
    per_frame = [(present, np.column_stack([ys, xs])) for present, ys, xs, _ in stats]
    lap = LapTrack(metric="sqeuclidean", cutoff=max_distance**2, splitting_metric="sqeuclidean",
                   splitting_cutoff=max_distance**2, gap_closing_cutoff=False, merging_cutoff=False)
    graph = lap.predict([coords for _, coords in per_frame])
    links: list[Links] = [{} for _ in masks]
    for (f0, i0), (f1, i1) in graph.edges():
        if f1 == f0 + 1:
            links[f1][int(per_frame[f1][0][i1])] = int(per_frame[f0][0][i0])
    return links


def replay(masks: list[np.ndarray], links: list[Links], out: Path) -> Path:
    """A CTC result from masks and precomputed links, through the Tracker's lineage and the CTC writer."""
    step = iter(links[1:])
    tracker = Tracker(InferenceConfig(), linker=lambda _labels, _prev, _pred: next(step))
    return tracker.track(masks, masks=masks).write_ctc(out)


def overlap(masks: list[np.ndarray], out: Path) -> Path:
    tracker = Tracker(InferenceConfig(), linker=lambda labels, prev, _pred: baseline.link_overlap(labels, prev, 0.1))
    return tracker.track(masks, masks=masks).write_ctc(out)


def row(name: str, res: Path, gt: Path, seconds: float) -> None:
    scores = evaluate(res, gt, METRICS)
    print(f"{name:34s} " + "  ".join(f"{m} {scores[m]:.4f}" for m in METRICS) + f"   ({seconds:.1f} s)", flush=True)


def timed(func: Callable[[], Path]) -> tuple[Path, float]:
    tic = time.perf_counter()
    return func(), time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--seed", type=int, default=9101)
    parser.add_argument("--model", default="Fluo-N2DH-SIM+")
    parser.add_argument("--distances", type=float, nargs="+", default=[10.0, 15.0, 25.0],
                        help="laptrack distance cut-offs (px) to try")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="embedtrack-masks-") as name:
        tmp = Path(name)
        data = write_dataset(tmp / "fluo", "fluo", args.frames, (args.size, args.size), args.seed, sequences=("01",))
        gt = data / "01_GT"
        masks = anonymous_masks(gt / "TRA", tmp / "masks", args.seed)
        n_div = sum(1 for t in open_tracking_gt(gt / "TRA")[1] if t.parent)
        print(f"synthetic fluo seed {args.seed}: {args.frames} frames of {args.size}², "
              f"{len(open_sequence(data / '01'))} raw frames, GT divisions (daughters) {n_div}")
        res, sec = timed(lambda: run_sequence(data / "01", args.model, tmp / "ours",
                                              RunOptions(device="cpu", masks=tmp / "masks")).output)
        row(f"embedtrack --masks ({args.model})", res, gt, sec)
        try:
            import laptrack  # noqa: F401
        except ImportError:
            print("laptrack: NOT INSTALLED, rows skipped (pip install laptrack)")
        else:
            for d in args.distances:
                res, sec = timed(lambda: replay(masks, laptrack_links(masks, d), tmp / f"lap{d:g}"))
                row(f"laptrack (cut-off {d:g} px)", res, gt, sec)
        res, sec = timed(lambda: overlap(masks, tmp / "overlap"))
        row("overlap (IoU >= 0.1)", res, gt, sec)


if __name__ == "__main__":
    main()
