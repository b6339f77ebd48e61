"""The appearance stage on real held-out frames: does it leave the training conditions alone, what sigma suits
noisier frames, does it find the scale of larger cells?  Prints one table per part (docs/appearance.md).

    python benchmarks/bench_appearance.py DATA_DIR WORK_DIR [--parts heldout,snr,scale] [--sigmas 1,2,3,4]

* ``heldout``: each real model on its own held-out frames (:mod:`embedtrack.training.heldout`), stage auto/auto vs
  off/off: the dead bands must leave these unchanged.
* ``snr``: the Fluo-N2DH-SIM+ held-out frames degraded to body SNR 2 and 1 (Gaussian noise of std = the
  current body contrast / target SNR, :mod:`ctc.conditions`; the achieved SNR is measured and printed), run
  with ``cell_size=off`` and ``denoise`` off, each of ``--sigmas`` and auto: calibrates
  :func:`embedtrack.inference.appearance.sigma_rule`.
* ``scale``: the Fluo-C2DL-MSC held-out frames upscaled x1.8 (frames bilinear, ground truth nearest), stage
  off vs ``cell_size`` auto (``denoise`` off).

Work folders are made under WORK_DIR (reused when there); results are scored with py-ctcmetrics.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

from ctc.conditions import measure
from ctc.evaluate import evaluate
from embedtrack.inference.appearance import resample_frame, resample_labels
from embedtrack.training.heldout import write_heldout
from embedtrack.io.pipeline import RunOptions, run_sequence
from embedtrack.inference.tracker import Tracker

MODELS = {"Fluo-N2DH-SIM+": "Fluo-N2DH-SIM+", "Fluo-N2DH-GOWT1": "Fluo-N2DH-GOWT1", "Fluo-C2DL-MSC": "Fluo-C2DL-MSC"}
METRICS = ("SEG", "TRA", "DET")


def heldout(data: Path, work: Path, dataset: str) -> Path:
    """``WORK/heldout/DATASET`` with ``01`` and ``01_GT`` (made once)."""
    out = work / "heldout" / dataset
    if not (out / "01_GT").is_dir():
        shutil.rmtree(out, ignore_errors=True)
        write_heldout(data / dataset, "01", out)
    return out


def score(tracker: Tracker, dataset_dir: Path, cell_size: str | float, denoise: str | float,
          tag: str) -> dict[str, float | str]:
    """Run the stage as asked on ``dataset_dir/01`` and score it; with what the stage applied."""
    out = dataset_dir / f"01_RES_{tag}"
    tic = time.perf_counter()
    run_sequence(dataset_dir / "01", tracker, out, RunOptions(cell_size=cell_size, denoise=denoise, overwrite=True))
    scores = evaluate(out, dataset_dir / "01_GT", METRICS)
    import json
    applied = json.loads(out.with_name(out.name + ".json").read_text())["appearance"]
    return {**{m: round(scores[m], 3) for m in METRICS}, "scale": applied.get("scale", 1.0),
            "sigma": applied.get("sigma", 0.0), "seconds": round(time.perf_counter() - tic, 1)}


def row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def part_heldout(data: Path, work: Path) -> None:
    print(row("dataset", "stage", "SEG", "TRA", "DET", "scale", "sigma", "s"))
    for dataset, model in MODELS.items():
        tracker = Tracker.from_model(model, device="cpu")
        folder = heldout(data, work, dataset)
        for stage in ("off", "auto"):
            r = score(tracker, folder, stage, stage, stage)
            print(row(dataset, stage, *r.values()), flush=True)


def copy_gt(src: Path, dst: Path, relabel: tuple[int, int] | None = None) -> None:
    """The ground truth ``src`` (``01_GT``) at ``dst``, its masks resampled nearest to ``relabel`` when given."""
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    if relabel is not None:
        for file in dst.rglob("man_*.tif"):
            tifffile.imwrite(file, resample_labels(tifffile.imread(file), relabel))


def degraded(data: Path, work: Path, snr: float, rng: np.random.Generator) -> tuple[Path, float]:
    """SIM+ held-out frames with noise for body SNR ``snr``; returns the folder and the SNR measured on it."""
    base = heldout(data, work, "Fluo-N2DH-SIM+")
    out = work / f"sim_snr{snr:g}"
    pairs = _seg_pairs(base)
    cond = measure(pairs)
    assert cond is not None
    std = cond.snr_median * cond.noise / snr
    if not (out / "01_GT").is_dir():
        (out / "01").mkdir(parents=True, exist_ok=True)
        for file in sorted((base / "01").glob("t*.tif")):
            frame = tifffile.imread(file).astype(np.float32)
            tifffile.imwrite(out / "01" / file.name, frame + rng.normal(0, std, frame.shape).astype(np.float32))
        copy_gt(base / "01_GT", out / "01_GT")
    achieved = measure(_seg_pairs(out))
    assert achieved is not None
    return out, achieved.snr_median


def _seg_pairs(folder: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    seg = sorted((folder / "01_GT" / "SEG").glob("man_seg*.tif"))
    return [(tifffile.imread(folder / "01" / f"t{f.stem[7:]}.tif"), tifffile.imread(f)) for f in seg]


def part_snr(data: Path, work: Path, sigmas: list[float]) -> None:
    tracker = Tracker.from_model("Fluo-N2DH-SIM+", device="cpu")
    rng = np.random.default_rng(0)
    print(row("target SNR", "measured SNR", "denoise", "SEG", "TRA", "DET", "scale", "sigma", "s"))
    for snr in (2.0, 1.0):
        folder, measured = degraded(data, work, snr, rng)
        for denoise in ["off", *sigmas, "auto"]:
            r = score(tracker, folder, "off", denoise, f"dn{denoise}")
            print(row(snr, round(measured, 2), denoise, *r.values()), flush=True)


def part_scale(data: Path, work: Path, factor: float = 1.8) -> None:
    base = heldout(data, work, "Fluo-C2DL-MSC")
    out = work / f"msc_x{factor:g}"
    if not (out / "01_GT").is_dir():
        (out / "01").mkdir(parents=True, exist_ok=True)
        shape = None
        for file in sorted((base / "01").glob("t*.tif")):
            frame = tifffile.imread(file)
            shape = (int(round(frame.shape[0] * factor)), int(round(frame.shape[1] * factor)))
            tifffile.imwrite(out / "01" / file.name, resample_frame(frame, shape))
        copy_gt(base / "01_GT", out / "01_GT", shape)
    tracker = Tracker.from_model("Fluo-C2DL-MSC", device="cpu")
    print(row("MSC held-out", "cell_size", "SEG", "TRA", "DET", "scale", "sigma", "s"))
    for cell_size in ("off", "auto"):
        r = score(tracker, out, cell_size, "off", f"cs{cell_size}")
        print(row(f"x{factor:g}", cell_size, *r.values()), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path, help="folder of CTC training datasets (../shared/data/ctc)")
    parser.add_argument("work", type=Path, help="work folder")
    parser.add_argument("--parts", default="heldout,snr,scale")
    parser.add_argument("--sigmas", default="1,2,3,4")
    args = parser.parse_args(argv)
    parts = set(args.parts.split(","))
    args.work.mkdir(parents=True, exist_ok=True)
    if "heldout" in parts:
        part_heldout(args.data, args.work)
    if "snr" in parts:
        part_snr(args.data, args.work, [float(s) for s in args.sigmas.split(",") if s.strip()])
    if "scale" in parts:
        part_scale(args.data, args.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
