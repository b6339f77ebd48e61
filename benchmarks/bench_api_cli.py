"""The Python API against the `embedtrack` command on the same frames, under a competing busy process.

Each run is a fresh process started as a user would, without ``OMP_WAIT_POLICY`` or ``OMP_NUM_THREADS`` set:
``cli`` is ``embedtrack run SEQ``, ``api`` is ``Tracker.from_model(...).track(SEQ)`` after ``from embedtrack
import Tracker``, ``api, torch first`` the same after ``import torch`` (OpenMP has then started with its default
wait policy; embedtrack warns). The variants alternate, ``--rounds`` times, while one extra process keeps a core
busy; the table gives every run's tracking seconds (model loaded to last frame tracked), their median and the
ratio of medians to ``cli``.

    python benchmarks/bench_api_cli.py [--frames 30] [--size 256] [--rounds 3] [--model Fluo-N2DH-SIM+]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

API = """
import sys, time
{first}from embedtrack import Tracker
tic = time.perf_counter()
Tracker.from_model(sys.argv[2], device="cpu").track(sys.argv[1])
print("seconds", time.perf_counter() - tic)
"""
CLI = """
import sys, time
from embedtrack.cli import main
tic = time.perf_counter()
try:
    main(["-q", "run", sys.argv[1], "--model", sys.argv[2], "--device", "cpu", "--output", sys.argv[3],
          "--overwrite"], standalone_mode=False)
finally:
    print("seconds", time.perf_counter() - tic)
"""
VARIANTS = {"cli": CLI, "api": API.format(first=""), "api, torch first": API.format(first="import torch\n")}


def timed(code: str, seq: Path, model: str, out: Path) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS")}
    proc = subprocess.run([sys.executable, "-c", code, str(seq), model, str(out)], capture_output=True, text=True,
                          env={**env, "TQDM_DISABLE": "1"})
    lines = [line for line in proc.stdout.splitlines() if line.startswith("seconds")]
    if proc.returncode or not lines:
        raise SystemExit(f"run failed:\n{proc.stderr[-3000:]}")
    return float(lines[-1].split()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="Fluo-N2DH-SIM+")
    args = parser.parse_args()
    from ctc.synth import write_dataset

    with tempfile.TemporaryDirectory() as tmp:
        seq = write_dataset(Path(tmp) / "DS", "fluo", args.frames, (args.size, args.size), seed=3,
                            sequences=("01",)) / "01"
        busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            time.sleep(1.0)
            runs: dict[str, list[float]] = {name: [] for name in VARIANTS}
            for _ in range(args.rounds):
                for name, code in VARIANTS.items():
                    runs[name].append(timed(code, seq, args.model, Path(tmp) / "RES"))
                    print(f"{name}: {runs[name][-1]:.2f} s", file=sys.stderr)
        finally:
            busy.kill()
            busy.wait()
    base = statistics.median(runs["cli"])
    print(f"{args.frames} frames of {args.size}x{args.size}, {args.model}, CPU, one competing busy process\n")
    print("| variant | seconds per round | median | ratio to cli |\n|---|---|---|---|")
    for name, seconds in runs.items():
        median = statistics.median(seconds)
        print(f"| {name} | {', '.join(f'{s:.2f}' for s in seconds)} | {median:.2f} | {median / base:.2f} |")


if __name__ == "__main__":
    main()
