"""Many sequences: `embedtrack batch` on a local Dask cluster against a plain loop of `embedtrack run`.

Writes N synthetic sequences (``ROOT/Fluo-N2DH-SIM+/01 …``) and processes them, interleaved round by round
(A/B/C, A/B/C, …, so that a machine whose load changes treats the variants alike):

* A: ``embedtrack batch`` with 1 worker × 2 threads (one sequence at a time, 2 torch threads);
* B: ``embedtrack batch`` with 2 workers × 1 thread (two sequences at a time, 1 torch thread each);
* C: a loop of ``embedtrack run``, one fresh process per sequence (torch uses every core).

Then the overhead of the batch path for one sequence: ``embedtrack batch --sequences 01`` (1 worker × all
cores, in a fresh process: cluster start included) against ``embedtrack run`` on the same sequence.
Prints total seconds, ratios to C, and peak resident memory (VmHWM) per worker or per run process.

    python benchmarks/bench_batch.py [--sequences 8] [--frames 20] [--size 512] [--rounds 2]
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")  # keep the printed table readable

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATASET = "Fluo-N2DH-SIM+"  # the bundled model of that name serves the synthetic sequences

RUN = """
import json, sys, time
from embedtrack.cli import main
tic = time.perf_counter()
main(["-q", "run", *sys.argv[1:]], standalone_mode=False)
peak = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
print(json.dumps({"inside": time.perf_counter() - tic, "peak_mib": [peak]}))
"""

BATCH = """
import json, sys, time
from embedtrack.io import batch
root, workers, threads, seqs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def peak():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024

tic = time.perf_counter()
jobs = batch.find_jobs(root, sequences=seqs)
with batch.open_client(None, workers, threads) as client:
    results = batch.run_batch(jobs, batch.JobOptions(device="cpu"), client)
    peaks = sorted(client.run(peak).values())
assert all(r.status == "done" for r in results), [r.error for r in results]
print(json.dumps({"inside": time.perf_counter() - tic, "peak_mib": peaks,
                  "task_seconds": [r.seconds for r in results]}))
"""


def child(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh Python process; its last stdout line is a JSON report, to which the wall time
    of the whole process (interpreter start and imports included) is added as ``seconds``."""
    tic = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    return {**json.loads(proc.stdout.strip().splitlines()[-1]), "seconds": time.perf_counter() - tic}


def clear(dataset: Path) -> None:
    """Remove the result folders this benchmark wrote (only ``NN_RES`` under its own temporary root)."""
    for res in dataset.glob("[0-9][0-9]_RES"):
        shutil.rmtree(res)


def loop_of_runs(dataset: Path, sequences: list[str]) -> dict:
    tic = time.perf_counter()
    peaks = [child(RUN, str(dataset / s), "--model", DATASET, "--device", "cpu")["peak_mib"][0] for s in sequences]
    return {"seconds": time.perf_counter() - tic, "peak_mib": [max(peaks)]}


def variants(root: Path, sequences: list[str]) -> dict[str, callable]:
    every = ",".join(sequences)
    return {
        "A batch 1 worker x 2 threads": lambda: child(BATCH, str(root), "1", "2", every),
        "B batch 2 workers x 1 thread": lambda: child(BATCH, str(root), "2", "1", every),
        "C loop of embedtrack run": lambda: loop_of_runs(root / DATASET, sequences),
    }


def interleaved(named: dict[str, callable], rounds: int, dataset: Path) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {name: [] for name in named}
    for r in range(rounds):
        for name, func in named.items():
            clear(dataset)
            out[name].append(func())
            print(f"  round {r + 1} {name}: {out[name][-1]['seconds']:.1f} s", flush=True)
    return out


def report(results: dict[str, list[dict]], reference: str) -> None:
    ref = statistics.median(x["seconds"] for x in results[reference])
    print(f"{'variant':<32} {'seconds per round':>24} {'median':>8} {'ratio':>6} {'peak MiB':>16}")
    for name, runs in results.items():
        secs = [x["seconds"] for x in runs]
        med = statistics.median(secs)
        peaks = "/".join(f"{p:.0f}" for p in max((x["peak_mib"] for x in runs), key=max))
        print(f"{name:<32} {' '.join(f'{s:.1f}' for s in secs):>24} {med:8.1f} {med / ref:6.2f} {peaks:>16}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=8)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args()

    from ctc.synth import write_dataset

    names = [f"{i + 1:02d}" for i in range(args.sequences)]
    cores = len(os.sched_getaffinity(0))
    print(f"{args.sequences} sequences x {args.frames} frames of {args.size}^2, model {DATASET}, CPU, {cores} cores, "
          f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory(prefix="embedtrack-bench-batch-") as tmp:
        root = Path(tmp)
        write_dataset(root / DATASET, "fluo", args.frames, (args.size, args.size), args.seed, sequences=tuple(names))
        print("many sequences:")
        many = interleaved(variants(root, names), args.rounds, root / DATASET)
        print("one sequence (01):")
        one = interleaved({"batch --sequences 01": lambda: child(BATCH, str(root), "1", str(cores), "01"),
                           "run": lambda: child(RUN, str(root / DATASET / "01"), "--model", DATASET,
                                                "--device", "cpu")}, args.rounds, root / DATASET)
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    report(many, "C loop of embedtrack run")
    print()
    report(one, "run")
    tasks = [x["task_seconds"][0] for x in one["batch --sequences 01"]]
    runs = [x["inside"] for x in one["run"]]
    print(f"the sequence itself (median): {statistics.median(tasks):.2f} s as a batch task inside the worker, "
          f"{statistics.median(runs):.2f} s inside the embedtrack run process (imports and model load included)")


if __name__ == "__main__":
    main()
