"""Speed of :func:`embedtrack.inference.instances.whole_cells` on a 1024 x 1024 frame with about 1000 cells.

The frame: Voronoi cells of 1000 random seeds, shrunk by a 2 px background gap (so that cells touch in places
but not everywhere), each with a hole of 2x2 px in its middle, plus 3000 stray 1-3 px islands carrying a
random label, scattered over the frame. Prints the labels in several pieces and the holes before and after,
and the median seconds over the runs.

Usage::

    python benchmarks/bench_instances.py [--size 1024] [--cells 1000] [--islands 3000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from scipy import ndimage as ndi
from scipy.spatial import cKDTree

from embedtrack.inference.instances import whole_cells


def frame(size: int, cells: int, islands: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    seeds = rng.uniform(0, size, (cells, 2))
    rr, cc = np.mgrid[:size, :size]
    dist, owner = cKDTree(seeds).query(np.stack([rr.ravel(), cc.ravel()], 1), k=2)
    labels = (owner[:, 0] + 1).reshape(size, size).astype(np.int32)
    labels[(dist[:, 1] - dist[:, 0]).reshape(size, size) < 2.0] = 0  # gaps between most neighbours
    cy, cx = np.rint(seeds).astype(int).T.clip(0, size - 2)
    for dy in (0, 1):
        for dx in (0, 1):
            labels[cy + dy, cx + dx] = 0  # a hole in every cell
    iy, ix = rng.integers(0, size - 3, (2, islands))
    lengths = rng.integers(1, 4, islands)
    ids = rng.integers(1, cells + 1, islands)
    for k in range(3):
        sel = lengths > k
        labels[iy[sel], ix[sel] + k] = ids[sel]
    return labels


def count_split(labels: np.ndarray) -> int:
    return sum(ndi.label(labels[sl] == lab)[1] > 1
               for lab, sl in enumerate(ndi.find_objects(labels), start=1) if sl is not None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--cells", type=int, default=1000)
    ap.add_argument("--islands", type=int, default=3000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    labels = frame(a.size, a.cells, a.islands)
    times = []
    for _ in range(a.runs):
        tic = time.perf_counter()
        out = whole_cells(labels)
        times.append(time.perf_counter() - tic)
    holes = int((labels == 0).sum() - (out == 0).sum())
    print(f"{a.size}x{a.size}, {len(np.unique(labels)) - 1} labels: in several pieces {count_split(labels)} -> "
          f"{count_split(out)}; background pixels filled or freed net {holes}")
    print(f"seconds per frame: median {statistics.median(times):.3f}, max {max(times):.3f}")


if __name__ == "__main__":
    main()
