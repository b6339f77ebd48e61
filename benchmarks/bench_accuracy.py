"""Accuracy of the bundled models against the classical baseline (benchmarks/baseline.py).

(a) For each synthetic preset with a bundled model of that modality (the PhC-C2DL-PSC model is trained on real
    frames, the others on synthetic data): a fresh synthetic sequence (seed not used in training) is
    segmented and tracked by the model and by the baseline; both are scored with `ctc.evaluate` (SEG, TRA,
    DET) against the sequence's ground truth.
(b) PhC-C2DL-PSC: the model and the baseline run on the real frames of ../shared/data/ctc/PhC-C2DL-PSC/02; SEG
    is scored against the silver truth on the validation frames (the last 10 %, not used in training).

    python benchmarks/bench_accuracy.py [--frames 30] [--size 384] [--seed 9001] [--psc ../shared/data/ctc]
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


sys.path.insert(0, str(Path(__file__).resolve().parent))

import baseline  # noqa: E402

from ctc.evaluate import evaluate  # noqa: E402
from ctc.io import frame_name, open_segmentation, open_sequence  # noqa: E402
from ctc.synth import write_dataset  # noqa: E402
from embedtrack.training.data import write_linked_gt  # noqa: E402
from embedtrack.io.pipeline import RunOptions, run_sequence  # noqa: E402
from embedtrack.models.registry import bundled_models  # noqa: E402

SYNTH_MODELS = {"fluo": "Fluo-N2DH-SIM+", "bf": "BF-C2DL-HSC", "phc": "PhC-C2DL-PSC"}
BASELINE_MODE = {"fluo": [], "phc": ["--compress", "none"], "bf": []}


def run_baseline(seq: Path, out: Path, extra: list[str]) -> None:
    baseline.main([str(seq), str(out), "--overwrite", *extra])


def score(res: Path, gt: Path, metrics: tuple[str, ...]) -> dict[str, float]:
    return evaluate(res, gt, metrics)


def fmt(scores: dict[str, float], metrics: tuple[str, ...]) -> str:
    return "  ".join(f"{m} {scores[m]:.3f}" for m in metrics)


def synthetic(tmp: Path, frames: int, size: int, seed: int) -> None:
    models = bundled_models()
    for preset, name in SYNTH_MODELS.items():
        if name not in models:
            continue
        data = write_dataset(tmp / preset, preset, frames, (size, size), seed, sequences=("01",))
        run_sequence(data / "01", name, tmp / f"{preset}_model", RunOptions(device="cpu"))
        run_baseline(data / "01", tmp / f"{preset}_base", BASELINE_MODE[preset])
        metrics = ("SEG", "TRA", "DET")
        print(f"synthetic {preset:5s} model {name:15s} {fmt(score(tmp / f'{preset}_model', data / '01_GT', metrics), metrics)}"
              f"   | baseline {fmt(score(tmp / f'{preset}_base', data / '01_GT', metrics), metrics)}")


def psc(tmp: Path, root: Path) -> None:
    raw = open_sequence(root / "PhC-C2DL-PSC" / "02")
    st = open_segmentation(root / "PhC-C2DL-PSC" / "02_ST" / "SEG")
    n_val = max(1, len(raw) - int(round(len(raw) * 0.9)))
    first = len(raw) - n_val
    seq = tmp / "psc" / "02"
    seq.mkdir(parents=True)
    # renumbered from 0: py-ctcmetrics indexes frames by number
    for i in range(n_val):
        shutil.copy(raw.files[first + i], seq / frame_name("t", i, raw.ndigits))
    gt = write_linked_gt([st.read(i) for i in range(first, len(raw))], list(range(n_val)), raw.ndigits,
                         tmp / "psc" / "02_GT")
    metrics = ("SEG",)
    line = f"PhC-C2DL-PSC 02 frames {raw.indices[first]}-{raw.indices[-1]} (validation) vs ST:"
    if "PhC-C2DL-PSC" in bundled_models():
        run_sequence(seq, "PhC-C2DL-PSC", tmp / "psc_model", RunOptions(device="cpu"))
        line += f" model {fmt(score(tmp / 'psc_model', gt, metrics), metrics)}"
    run_baseline(seq, tmp / "psc_base", BASELINE_MODE["phc"])
    print(line + f"   | baseline {fmt(score(tmp / 'psc_base', gt, metrics), metrics)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--seed", type=int, default=9001)
    parser.add_argument("--psc", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/data/ctc")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="embedtrack-acc-") as name:
        tmp = Path(name)
        synthetic(tmp, args.frames, args.size, args.seed)
        if (args.psc / "PhC-C2DL-PSC" / "02").is_dir():
            psc(tmp, args.psc)
        else:
            print(f"PhC-C2DL-PSC: {args.psc} not found, skipped")


if __name__ == "__main__":
    main()
