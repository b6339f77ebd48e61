"""Before/after timing of two checkouts of this repository, alternating in one run on the same sequence.

Each run is `run_sequence` in a fresh process whose ``embedtrack`` is imported from the given checkout
(``PYTHONPATH``, started outside any checkout), with ``OMP_WAIT_POLICY=PASSIVE`` as the command sets it.
Prints seconds per frame per stage and the peak RSS of every run.

    git worktree add /tmp/before <commit>
    python benchmarks/compare_checkouts.py /tmp/before . [--frames 20] [--repeats 2] [--tta off on]
        [--precision bf16 fp32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from itertools import product
from pathlib import Path

CHILD = """
import json, sys
import embedtrack
from embedtrack.io.pipeline import RunOptions, run_sequence
r = run_sequence(sys.argv[1], sys.argv[2], sys.argv[3], RunOptions(tta=sys.argv[4] == "on", device="cpu",
                 precision=sys.argv[5], overwrite=True))
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"frames": r.frames, "seconds": r.seconds, "peak": peak, "source": embedtrack.__file__}))
"""


def run(checkout: Path, seq: Path, out: Path, model: str, tta: str, precision: str) -> dict:
    """One run with ``embedtrack`` from ``checkout``; fails loudly if another copy was imported."""
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_WAIT_POLICY": "PASSIVE", "TQDM_DISABLE": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(seq), model, str(out), tta, precision], env=env,
                          capture_output=True, text=True, cwd=tempfile.gettempdir())
    if proc.returncode:
        raise SystemExit(f"{checkout}: the run failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if not Path(result["source"]).resolve().is_relative_to(checkout):
        raise SystemExit(f"{checkout}: embedtrack was imported from {result['source']} instead")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--model", default="Fluo-N2DH-SIM+")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--tta", nargs="+", default=["off", "on"], choices=["off", "on"])
    parser.add_argument("--precision", nargs="+", default=["bf16", "fp32"], choices=["auto", "bf16", "fp32"])
    args = parser.parse_args()
    checkouts = {"before": args.before.resolve(), "after": args.after.resolve()}

    from ctc.synth import write_dataset

    with tempfile.TemporaryDirectory(prefix="embedtrack-compare-") as tmp:
        seq = write_dataset(Path(tmp) / "d", "fluo", args.frames, (args.size, args.size), 7, sequences=("01",)) / "01"
        for tta, precision in product(args.tta, args.precision):
            for _ in range(args.repeats):
                for name, checkout in checkouts.items():
                    r = run(checkout, seq, Path(tmp) / "r", args.model, tta, precision)
                    sec = {k: v / r["frames"] for k, v in r["seconds"].items()}
                    print(f"TTA {tta:>3} {precision} {name:>6}: predict {sec['predict']:.3f} cluster "
                          f"{sec['cluster']:.3f} link {sec['link']:.3f} total {sum(sec.values()):.3f} s per frame, "
                          f"peak {r['peak']:.0f} MiB", flush=True)


if __name__ == "__main__":
    main()
