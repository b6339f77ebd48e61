"""How the models hold up on data they were not trained on; every score from `ctc.evaluate` (py-ctcmetrics).

(a) Leave one appearance family out: for each ``--lofo FAMILY=MODEL`` (a model trained on synthetic
    fluorescence without FAMILY, e.g. ``embedtrack synth … --hold-out FAMILY``), fresh sequences drawn with
    that family alone are segmented and tracked by the model and by the classical baseline.
(b) Real Fluo-N2DL-HeLa 02 (20 frames, tracked as one sequence): detection F1 at IoU > 0.5 and mean matched
    IoU against ERR_SEG on frames 014-019 (not used in training), divisions found in all 20 frames.
(c) Real PhC-C2DL-PSC 02: SEG against the silver truth on the validation frames 036-039.
(d) The demo sequence (seed 2026): SEG / TRA / DET and the divisions found against the true count.

For every result it also reports the share of labels made of more than one connected piece.

    python benchmarks/bench_generalization.py --lofo blobs=m_no_blobs --lofo rim=m_no_rim \\
        [--fluo-model Fluo-N2DH-SIM+] [--psc-model PhC-C2DL-PSC] [--real ../shared/data/ctc]
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # keep the printed table readable

import argparse
import logging
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from skimage.measure import label as connected_regions

sys.path.insert(0, str(Path(__file__).resolve().parent))

import baseline  # noqa: E402
from bench_accuracy import BASELINE_MODE  # noqa: E402

from ctc.evaluate import evaluate  # noqa: E402
from ctc.labels import label_set  # noqa: E402
from ctc.overlap import overlaps  # noqa: E402
from ctc.io import frame_name, open_result, open_segmentation, open_sequence, read_track_file  # noqa: E402
from ctc.lineage import division_count  # noqa: E402
from ctc.synth import write_dataset  # noqa: E402
from embedtrack.training.data import write_linked_gt  # noqa: E402
from embedtrack.io.pipeline import RunOptions, run_sequence  # noqa: E402

METRICS = ("SEG", "TRA", "DET")
DEMO_SEED = 2026


def divisions(track_file: Path) -> int:
    """Number of divisions (parents of two or more tracks) in a CTC track file."""
    return division_count(read_track_file(track_file))


def fragmented_share(res_dir: Path) -> float:
    """Share of (frame, label) instances made of more than one 4-connected piece."""
    seq, _ = open_result(res_dir)
    split, total = 0, 0
    for i in range(len(seq)):
        mask = seq.read(i)
        regions = connected_regions(mask, connectivity=1, background=0)
        pairs = np.unique(np.stack([mask[mask > 0], regions[mask > 0]]), axis=1)
        counts = np.bincount(pairs[0])
        split += int((counts > 1).sum())
        total += int((counts > 0).sum())
    return split / max(total, 1)


def detection(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int, int, float]:
    """(matches at IoU > 0.5, predicted objects, reference objects, sum of matched IoUs); such matches are unique."""
    table = overlaps(pred, gt)
    iou = table.iou()
    hits = iou > 0.5
    return (int(hits.sum()), len(label_set(pred)), len(label_set(gt)), float(iou[hits].sum()))


def run_both(seq: Path, model: str, out: Path, mode: list[str]) -> tuple[Path, Path]:
    """Result folders of the model and of the baseline for one sequence."""
    run_sequence(seq, model, out / "model", RunOptions(device="cpu"))
    baseline.main([str(seq), str(out / "base"), "--overwrite", *mode])
    return out / "model", out / "base"


def describe(res: Path, gt: Path | None) -> str:
    scores = evaluate(res, gt, METRICS) if gt is not None else {}
    text = "  ".join(f"{m} {scores[m]:.3f}" for m in METRICS if m in scores)
    return f"{text}  div {divisions(res / 'res_track.txt'):3d}  split {fragmented_share(res):.1%}"


def leave_one_out(tmp: Path, lofo: list[tuple[str, str]], frames: int, size: int, seed: int) -> None:
    for family, model in lofo:
        data = write_dataset(tmp / f"lofo_{family}", "fluo", frames, (size, size), seed, sequences=("01", "02"),
                             appearance=(family,))
        for seq in ("01", "02"):
            res_model, res_base = run_both(data / seq, model, tmp / f"lofo_{family}_{seq}", BASELINE_MODE["fluo"])
            true_div = divisions(data / f"{seq}_GT" / "TRA" / "man_track.txt")
            print(f"held out {family:9s} {seq}  model: {describe(res_model, data / f'{seq}_GT')}  (true div "
                  f"{true_div})  | baseline: {describe(res_base, data / f'{seq}_GT')}")


def hela(tmp: Path, root: Path, model: str) -> None:
    raw_dir, ref_dir = root / "Fluo-N2DL-HeLa" / "02", root / "Fluo-N2DL-HeLa" / "02_ERR_SEG"
    res_model, res_base = run_both(raw_dir, model, tmp / "hela", BASELINE_MODE["fluo"])
    ref = open_sequence(ref_dir, prefix="mask")
    for name, res in (("model", res_model), ("baseline", res_base)):
        seq, _ = open_result(res)
        tp = n_pred = n_ref = 0
        iou_sum = 0.0
        for i, index in enumerate(ref.indices):
            if index < 14:
                continue
            t, p, r, s = detection(seq.read(seq.indices.index(index)), ref.read(i))
            tp, n_pred, n_ref, iou_sum = tp + t, n_pred + p, n_ref + r, iou_sum + s
        f1 = 2 * tp / max(n_pred + n_ref, 1)
        print(f"Fluo-N2DL-HeLa 02 frames 014-019 vs ERR_SEG, {name:8s}: F1 {f1:.3f} ({tp} matched, {n_pred} found, "
              f"{n_ref} in ERR_SEG), mean matched IoU {iou_sum / max(tp, 1):.3f}; all 20 frames: "
              f"{divisions(res / 'res_track.txt')} divisions, split {fragmented_share(res):.1%}")


def psc(tmp: Path, root: Path, model: str) -> None:
    raw = open_sequence(root / "PhC-C2DL-PSC" / "02")
    st = open_segmentation(root / "PhC-C2DL-PSC" / "02_ST" / "SEG")
    first = 36
    seq = tmp / "psc" / "02"
    seq.mkdir(parents=True)
    for i in range(first, len(raw)):  # renumbered from 0: py-ctcmetrics indexes frames by number
        shutil.copy(raw.files[i], seq / frame_name("t", i - first, raw.ndigits))
    gt = write_linked_gt([st.read(i) for i in range(first, len(raw))], list(range(len(raw) - first)), raw.ndigits,
                         tmp / "psc" / "02_GT")
    res_model, res_base = run_both(seq, model, tmp / "psc_res", BASELINE_MODE["phc"])
    print(f"PhC-C2DL-PSC 02 frames 036-039 vs ST: model SEG {evaluate(res_model, gt, ('SEG',))['SEG']:.3f}"
          f"  | baseline SEG {evaluate(res_base, gt, ('SEG',))['SEG']:.3f}")


def demo(tmp: Path, model: str) -> None:
    data = write_dataset(tmp / "demo", "fluo", 20, (384, 384), DEMO_SEED, sequences=("01",))
    res_model, res_base = run_both(data / "01", model, tmp / "demo_res", BASELINE_MODE["fluo"])
    true_div = divisions(data / "01_GT" / "TRA" / "man_track.txt")
    print(f"demo (seed {DEMO_SEED}) model: {describe(res_model, data / '01_GT')} (true div {true_div})"
          f"  | baseline: {describe(res_base, data / '01_GT')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lofo", action="append", default=[], metavar="FAMILY=MODEL",
                        help="a held-out appearance family and the model trained without it (repeatable)")
    parser.add_argument("--fluo-model", default="Fluo-N2DH-SIM+")
    parser.add_argument("--psc-model", default="PhC-C2DL-PSC")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--seed", type=int, default=9100)
    parser.add_argument("--real", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/data/ctc")
    parser.add_argument("--only", choices=("lofo", "hela", "psc", "demo"), action="append",
                        help="run only these parts (repeatable; default all)")
    args = parser.parse_args()
    lofo = [tuple(item.split("=", 1)) for item in args.lofo]
    if any(len(pair) != 2 for pair in lofo):
        parser.error("--lofo takes FAMILY=MODEL")
    parts = set(args.only or ("lofo", "hela", "psc", "demo"))
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="embedtrack-gen-") as name:
        tmp = Path(name)
        if "lofo" in parts:
            leave_one_out(tmp, lofo, args.frames, args.size, args.seed)  # type: ignore[arg-type]
        have_real = args.real.is_dir()
        if "hela" in parts and have_real:
            hela(tmp, args.real, args.fluo_model)
        if "psc" in parts and have_real:
            psc(tmp, args.real, args.psc_model)
        if "demo" in parts:
            demo(tmp, args.fluo_model)
        if not have_real:
            print(f"real data: {args.real} not found, skipped")


if __name__ == "__main__":
    main()
