"""Speed and memory of `embedtrack run` on synthetic 1024x1024 sequences.

Prints, per sequence length, the seconds per frame of each stage (read, predict, cluster, link, write: the busy
time of the stage, in whichever thread does it), their sum ("busy"), the wall-clock time per frame ("total";
below the sum when reading and writing overlap with the network) and the peak resident memory of the run
(measured in a fresh child process per run).

    python benchmarks/bench_run.py --frames 20 200 --size 1024 [--tta] [--model Fluo-N2DH-SIM+] [--device cpu]
        [--precision fp32 bf16 --repeats 2]   # alternates the precisions, repeats times, on the same sequence
        [--overlap on off]                    # background reading/writing on and off, alternating likewise
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # keep the printed table readable

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import json, sys
from embedtrack.pipeline import RunOptions, run_sequence
seq, model, out, tta, device, precision, overlap = sys.argv[1:8]
r = run_sequence(seq, model, out, RunOptions(tta=tta == "1", device=device, precision=precision, overwrite=True,
                                             overlap=overlap == "on"))
# VmHWM: this process's own peak; ru_maxrss would also count the parent's memory at fork time
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"frames": r.frames, "seconds": r.seconds, "wall_seconds": r.wall_seconds, "tracks": r.tracks,
                  "peak_mib": peak, "precision": r.precision, "overlap": overlap}))
"""


def run_once(seq: Path, model: str, out: Path, tta: bool, device: str, precision: str, overlap: str) -> dict:
    """Run in a fresh process; returns its report including its own peak RSS (MiB)."""
    proc = subprocess.run([sys.executable, "-c", CHILD, str(seq), model, str(out), "1" if tta else "0", device,
                           precision, overlap],
                          check=True, capture_output=True, text=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--model", default="Fluo-N2DH-SIM+")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tta", action="store_true")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--precision", nargs="+", default=["auto"], choices=["auto", "fp32", "bf16"])
    parser.add_argument("--overlap", nargs="+", default=["on"], choices=["on", "off"],
                        help="background reading and writing (RunOptions.overlap)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per precision and overlap, alternating")
    args = parser.parse_args()

    from ctc.synth import write_dataset

    print(f"embedtrack run, {args.size}x{args.size}, model {args.model}, {args.device}, TTA {'8x' if args.tta else 'off'}")
    print(f"{'frames':>6} {'prec':>5} {'ovl':>3} {'read':>7} {'predict':>8} {'cluster':>8} {'link':>7} {'write':>7}"
          f" {'busy':>7} {'total':>7} {'c+l %':>6} {'peak RSS':>9}   (seconds per frame; total = wall clock)")
    with tempfile.TemporaryDirectory(prefix="embedtrack-bench-") as tmp:
        for n in sorted(args.frames):
            data = write_dataset(Path(tmp) / f"d{n}", "fluo", n, (args.size, args.size), args.seed, sequences=("01",))
            for _ in range(args.repeats):
                for precision in args.precision:
                    for overlap in args.overlap:
                        result = run_once(data / "01", args.model, Path(tmp) / f"r{n}", args.tta, args.device,
                                          precision, overlap)
                        print_row(n, result)


def print_row(n: int, result: dict) -> None:
    """One table row: busy seconds per frame of each stage and their sum, wall seconds per frame (total),
    clustering + linking share of the wall time, peak RSS."""
    sec = {k: v / result["frames"] for k, v in result["seconds"].items()}
    busy = sum(sec.values())
    total = result["wall_seconds"] / result["frames"]
    share = 100 * (sec["cluster"] + sec["link"]) / total
    print(f"{n:>6} {result['precision']:>5} {result['overlap']:>3} {sec['read']:>7.3f} {sec['predict']:>8.3f} "
          f"{sec['cluster']:>8.3f} {sec['link']:>7.3f} {sec['write']:>7.3f} {busy:>7.3f} {total:>7.3f} "
          f"{share:>5.1f}% {result['peak_mib']:>7.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
