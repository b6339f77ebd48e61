"""Peak memory of `embedtrack run --tta` at 1024²: bounded, and flat with the sequence length.

Runs the whole pipeline (read, 8x TTA prediction, clustering, linking, writing) on a short and a long synthetic
sequence, each in a fresh child process, and compares the peak resident memory (VmHWM) of the two with the
budget. Exits with status 1 when a peak exceeds ``--budget-mib`` or the long run's peak exceeds the short one's
by more than ``--growth`` (relative), so it can guard a change; it is a benchmark, not a timed unit test.

    python benchmarks/bench_tta_memory.py [--frames 20 200] [--size 1024] [--budget-mib 1049] [--precision auto]

1.1 GB = 1049 MiB.
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_run import run_once  # noqa: E402

from ctc.synth import write_dataset  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs=2, default=[20, 200], metavar=("SHORT", "LONG"))
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--model", default="Fluo-N2DH-SIM+")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--budget-mib", type=float, default=1049.0)
    parser.add_argument("--growth", type=float, default=0.15, help="allowed relative growth, short -> long")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    peaks = []
    with tempfile.TemporaryDirectory(prefix="embedtrack-ttamem-") as tmp:
        data = write_dataset(Path(tmp) / "d", "fluo", max(args.frames), (args.size, args.size), args.seed,
                             sequences=("01",))
        for n in args.frames:
            seq = Path(tmp) / f"s{n}" / "01"
            seq.mkdir(parents=True)
            for frame in sorted((data / "01").glob("t*.tif"))[:n]:
                (seq / frame.name).symlink_to(frame)
            result = run_once(seq, args.model, Path(tmp) / f"r{n}", True, "cpu", args.precision)
            peaks.append(result["peak_mib"])
            print(f"{n:>4} frames of {args.size}², 8x TTA ({result['precision']}): peak RSS "
                  f"{result['peak_mib']:.0f} MiB, {sum(result['seconds'].values()) / n:.2f} s per frame", flush=True)
    growth = peaks[1] / peaks[0] - 1
    over = max(peaks) > args.budget_mib
    print(f"budget {args.budget_mib:.0f} MiB: {'EXCEEDED' if over else 'met'}; growth {args.frames[0]} -> "
          f"{args.frames[1]} frames {100 * growth:+.1f} % (allowed {100 * args.growth:.0f} %)")
    return 1 if over or growth > args.growth else 0


if __name__ == "__main__":
    sys.exit(main())
