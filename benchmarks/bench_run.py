"""Speed and memory of `embedtrack run` on synthetic 1024x1024 sequences.

Prints, per sequence length, the seconds per frame of each stage (read, predict, cluster, link, write: the busy
time of the stage, in whichever thread does it), their sum ("busy"), the wall-clock time per frame ("total";
below the sum when reading and writing overlap with the network) and the peak resident memory of the run
(measured in a fresh child process per run).

    python benchmarks/bench_run.py --frames 20 200 --size 1024 [--tta] [--model Fluo-N2DH-SIM+] [--device cpu]
        [--precision fp32 bf16 --repeats 2]   # alternates the precisions, repeats times, on the same sequence
        [--overlap on off]                    # background reading/writing on and off, alternating likewise
        [--compile off on] [--wait-policy PASSIVE unset] [--load idle busy]   # likewise
        [--widths 16,64,128]                  # the model at the paper's widths, random weights: read + predict
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # keep the printed table readable

import argparse
import json
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import replace
from itertools import product
from pathlib import Path
from typing import Iterator

CHILD = """
import json, sys
from embedtrack.io.pipeline import RunOptions, run_sequence
seq, model, out, options = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
r = run_sequence(seq, model, out, RunOptions(overwrite=True, **options))
# VmHWM: this process's own peak; ru_maxrss would also count the parent's memory at fork time
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"frames": r.frames, "seconds": r.seconds, "wall_seconds": r.wall_seconds, "tracks": r.tracks,
                  "peak_mib": peak, "precision": r.precision, "overlap": "on" if r.overlap else "off"}))
"""
# The network alone (a widened model with random weights finds no cells, so the later stages cannot run)
CHILD_PREDICT = """
import json, sys, time
from ctc.io import open_sequence
from embedtrack.inference.preprocess import normalise
from embedtrack.inference.tracker import Tracker
seq, model, out, options = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
tracker = Tracker.from_model(model, options["device"], options["tta"], precision=options["precision"],
                             compile=options["compile"])
frames, seconds, tic = open_sequence(seq), dict.fromkeys(("read", "predict", "cluster", "link", "write"), 0.0), 0.0
start = time.perf_counter()
for i in range(len(frames)):
    tic = time.perf_counter()
    norm = normalise(frames.read(i), tracker.config.norm_low, tracker.config.norm_high)
    toc = time.perf_counter()
    tracker.predict(norm)
    seconds["read"] += toc - tic
    seconds["predict"] += time.perf_counter() - toc
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"frames": len(frames), "seconds": seconds, "wall_seconds": time.perf_counter() - start,
                  "tracks": 0, "peak_mib": peak, "precision": tracker.info["precision"], "overlap": "off"}))
"""
SWITCH = {"on": True, "off": False, "auto": None}


def run_once(seq: Path, model: str, out: Path, tta: bool, device: str, precision: str, overlap: str = "auto",
             compile: str = "off", env: dict[str, str] | None = None, network_only: bool = False) -> dict:
    """Run in a fresh process (the CLI's OpenMP setting, PASSIVE, unless ``env`` says otherwise); returns its
    report including its own peak RSS (MiB). ``network_only``: read and predict only."""
    options = {"tta": tta, "device": device, "precision": precision, "overlap": SWITCH[overlap],
               "compile": SWITCH[compile]}
    child_env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", **(env or {})}
    child_env = {k: v for k, v in child_env.items() if v != "unset"}
    child = CHILD_PREDICT if network_only else CHILD
    proc = subprocess.run([sys.executable, "-c", child, str(seq), model, str(out), json.dumps(options)],
                          capture_output=True, text=True, env=child_env)
    if proc.returncode:
        raise SystemExit(f"the run failed ({options}):\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**result, "compile": compile, "wait": child_env.get("OMP_WAIT_POLICY", "unset")}


def widened_model(name: str, widths: list[int], folder: Path) -> Path:
    """A copy of model ``name`` with other encoder/decoder widths and random weights (speed only: its maps are
    meaningless, so only its predict times are worth reading)."""
    import torch

    from embedtrack.models.architecture import ArchConfig, EmbedTrackNet
    from embedtrack.models.registry import load_model, save_model

    _, config = load_model(name)
    arch = {**config.architecture, "widths": widths}
    torch.manual_seed(0)
    save_model(folder, EmbedTrackNet(ArchConfig.from_dict(arch)), replace(config, architecture=arch))
    return folder


@contextmanager
def competing_load(on: bool, seconds: int = 3600) -> Iterator[None]:
    """One busy Python process beside the run (bounded by ``seconds`` and stopped on exit), or nothing."""
    if not on:
        yield
        return
    busy = subprocess.Popen(["timeout", str(seconds), sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        busy.terminate()
        busy.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--model", default="Fluo-N2DH-SIM+")
    parser.add_argument("--widths", default=None, help="e.g. 16,64,128: the model at these widths, random "
                                                       "weights; times reading and the network only")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tta", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--precision", nargs="+", default=["auto"], choices=["auto", "fp32", "bf16"])
    parser.add_argument("--overlap", nargs="+", default=["auto"], choices=["auto", "on", "off"],
                        help="background reading and writing (RunOptions.overlap)")
    parser.add_argument("--compile", nargs="+", default=["off"], choices=["on", "off"])
    parser.add_argument("--wait-policy", nargs="+", default=["PASSIVE"], choices=["PASSIVE", "ACTIVE", "unset"],
                        help="OMP_WAIT_POLICY of the run (the embedtrack command sets PASSIVE unless set)")
    parser.add_argument("--load", nargs="+", default=["idle"], choices=["idle", "busy"],
                        help="busy: one competing busy process runs beside the run")
    parser.add_argument("--repeats", type=int, default=1, help="runs per combination, alternating")
    args = parser.parse_args()

    from ctc.synth import write_dataset

    widths = f" widths {args.widths}" if args.widths else ""
    print(f"embedtrack run, {args.size}x{args.size}, model {args.model}{widths}"
          f", {args.device}, TTA {'8x' if args.tta else 'off'}")
    print(f"{'frames':>6} {'prec':>5} {'ovl':>3} {'cmp':>3} {'wait':>7} {'load':>4} {'read':>7} {'predict':>8} "
          f"{'cluster':>8} {'link':>7} {'write':>7} {'busy':>7} {'total':>7} {'c+l %':>6} {'peak RSS':>9}"
          "   (seconds per frame; total = wall clock)")
    combos = list(product(args.precision, args.overlap, args.compile, args.wait_policy, args.load))
    with tempfile.TemporaryDirectory(prefix="embedtrack-bench-") as tmp:
        model = args.model if not args.widths else str(widened_model(
            args.model, [int(w) for w in args.widths.split(",")], Path(tmp) / "model"))
        for n in sorted(args.frames):
            data = write_dataset(Path(tmp) / f"d{n}", "fluo", n, (args.size, args.size), args.seed, sequences=("01",))
            for _ in range(args.repeats):
                for precision, overlap, compile_, wait, load in combos:
                    with competing_load(load == "busy"):
                        result = run_once(data / "01", model, Path(tmp) / f"r{n}", args.tta, args.device,
                                          precision, overlap, compile_, {"OMP_WAIT_POLICY": wait},
                                          network_only=bool(args.widths))
                    print_row(n, {**result, "load": load})


def print_row(n: int, result: dict) -> None:
    """One table row: busy seconds per frame of each stage and their sum, wall seconds per frame (total),
    clustering + linking share of the wall time, peak RSS."""
    sec = {k: v / result["frames"] for k, v in result["seconds"].items()}
    busy = sum(sec.values())
    total = result["wall_seconds"] / result["frames"]
    share = 100 * (sec["cluster"] + sec["link"]) / total
    print(f"{n:>6} {result['precision']:>5} {result['overlap']:>3} {result['compile']:>3} {result['wait']:>7} "
          f"{result['load']:>4} {sec['read']:>7.3f} {sec['predict']:>8.3f} "
          f"{sec['cluster']:>8.3f} {sec['link']:>7.3f} {sec['write']:>7.3f} {busy:>7.3f} {total:>7.3f} "
          f"{share:>5.1f}% {result['peak_mib']:>7.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
