"""Models on real CTC data: scores on the held-out frames of each real sequence at hand, every model on every one.

For each dataset the held-out block is the one training holds out (:mod:`embedtrack.training.heldout`, by the dataset's
preset: the last quarter of the frames with outlines), so a model trained on that dataset never saw these
frames. The block is cut into a dataset of its own, each model
runs on it through ``embedtrack run`` (what a user runs) and is scored with ``embedtrack evaluate``'s metrics.
PhC-C2DL-PSC has silver truth only: its ground truth is the ST masks linked by overlap, so only SEG counts.

Prints three tables: the cross-dataset table of SEG / TRA (rows models, columns datasets), the full scores
(SEG, TRA, DET, BC(0)) of each model on the dataset it is named after, and each model's training cost as its
``config.json`` records it. ``--check FILE`` compares against floors (JSON ``{"model": {"dataset": {"SEG": x}}}``)
and exits 1 when a score falls below its floor.

Usage::

    python benchmarks/bench_real.py [--real ../shared/data/ctc] [--models M ...] [--baseline] [--check floors.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from ctc.evaluate import evaluate
from ctc.io import SequencePaths
from embedtrack.training.heldout import write_heldout
from embedtrack.models.registry import read_config, resolve_model

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {  # dataset -> sequence at hand
    "Fluo-N2DH-SIM+": "01",
    "Fluo-N2DH-GOWT1": "01",
    "Fluo-C2DL-MSC": "01",
    "PhC-C2DL-PSC": "02",
}
CLI = (sys.executable, "-c", "import sys; from embedtrack.cli import main; sys.argv[0] = 'embedtrack'; main()")
METRICS = ("SEG", "TRA", "DET", "BC(0)")
DEFAULT_MODELS = ("Fluo-N2DH-SIM+", "Fluo-N2DH-GOWT1", "Fluo-C2DL-MSC", "PhC-C2DL-PSC", "fluo-nuclei-generalist")


def run_model(model: str, seq_dir: Path, res: Path) -> float:
    """``embedtrack run`` of one model on one sequence; returns the wall-clock seconds."""
    tic = time.perf_counter()
    subprocess.run([*CLI, "-q", "run", str(seq_dir), "--model", model, "--output", str(res)], check=True)
    return time.perf_counter() - tic


def run_baseline(seq_dir: Path, res: Path) -> float:
    tic = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "baseline.py"), str(seq_dir), str(res)], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - tic


def score(res: Path, gt: Path, silver: bool) -> dict[str, float]:
    metrics = ("SEG",) if silver else METRICS
    found = evaluate(res, gt, metrics)
    return {m: float(found[m]) for m in metrics if m in found and found[m] is not None}


def _fmt(value: float | None) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.3f}"


def tables(scores: dict[str, dict[str, dict[str, float]]], datasets: list[str]) -> str:
    lines = ["SEG / TRA on the held-out frames (rows: models, columns: real sequences)", "",
             "| model | " + " | ".join(datasets) + " |", "|---|" + "---|" * len(datasets)]
    for model, per in scores.items():
        cells = [f"{_fmt(per.get(d, {}).get('SEG'))} / {_fmt(per.get(d, {}).get('TRA'))}" for d in datasets]
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    lines += ["", "Each model on the dataset it is named after (held-out frames)", "",
              "| model | dataset | " + " | ".join(METRICS) + " |", "|---|---|" + "---|" * len(METRICS)]
    for model, per in scores.items():
        own = [d for d in datasets if d in model and d in per]
        for d in own:
            lines.append(f"| {model} | {d} | " + " | ".join(_fmt(per[d].get(m)) for m in METRICS) + " |")
    return "\n".join(lines)


def training_cost(models: list[str]) -> str:
    lines = ["", "Training cost (as recorded in each model's config.json)", "", "| model | trained on | time |",
             "|---|---|---|"]
    for model in models:
        training = read_config(resolve_model(model)).training
        lines.append(f"| {Path(model).name} | {training.get('dataset', '?')} | {training.get('train_time', '?')} |")
    return "\n".join(lines)


def check(scores: dict[str, dict[str, dict[str, float]]], floors_file: Path) -> list[str]:
    floors = json.loads(floors_file.read_text())
    misses = []
    for model, per in floors.items():
        for dataset, metrics in per.items():
            for metric, floor in metrics.items():
                got = scores.get(model, {}).get(dataset, {}).get(metric)
                if got is None or got < floor:
                    misses.append(f"{model} on {dataset}: {metric} {_fmt(got)} below the floor {floor}")
    return misses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "ctc")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--baseline", action="store_true", help="add the classical baseline (benchmarks/baseline.py)")
    parser.add_argument("--check", type=Path, help="JSON floors; exit 1 when a score is below its floor")
    parser.add_argument("--json", type=Path, help="write the scores as JSON to this new file")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_real-"))
    scores: dict[str, dict[str, dict[str, float]]] = {}
    try:
        for dataset in args.datasets:
            sequence = DATASETS[dataset]
            data = write_heldout(args.real / dataset, sequence, work / dataset)
            silver = not SequencePaths(args.real / dataset, sequence).gt_tra.is_dir()
            runners = [(Path(m).name, lambda s, r, m=m: run_model(m, s, r)) for m in args.models]
            runners += [("classical baseline", run_baseline)] if args.baseline else []
            for name, runner in runners:
                res = work / "res" / name.replace(" ", "_") / dataset / f"{sequence}_RES"
                seconds = runner(data / sequence, res)
                scores.setdefault(name, {})[dataset] = {**score(res, data / f"{sequence}_GT", silver),
                                                         "seconds": round(seconds, 1)}
                print(f"{name} on {dataset}: {scores[name][dataset]}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(tables(scores, args.datasets))
    print(training_cost(args.models))
    if args.json:
        args.json.write_text(json.dumps(scores, indent=1))
    misses = check(scores, args.check) if args.check else []
    for miss in misses:
        print(f"FAIL: {miss}", file=sys.stderr)
    return 1 if misses else 0


if __name__ == "__main__":
    sys.exit(main())
