"""Time the synthetic dataset generator: a full CTC dataset (sequences 01 and 02) per preset.

Usage::

    python benchmarks/bench_synth.py [--size 512 512] [--frames 50] [--presets fluo,phc,bf] [--seed 0]
                                     [--png docs/images]

For each preset it writes a complete dataset (raw frames, GT/TRA, sparse GT/SEG, ST/SEG for 01 and 02, i.e.
2 x FRAMES frames) into a temporary folder with :func:`ctc.synth.write_dataset`, and prints the wall time, the
time per frame, and the track and division counts. With ``--png DIR`` it also saves
``DIR/synth_<preset>.png``: the middle frame of sequence 01 (a central crop of at most 320 x 320 pixels,
percentile-normalised) beside the same crop with the ground-truth outline of every track, and
``DIR/synth_families.png``: the same fluorescent cells drawn with each interior pattern family. The target is under 30 s for 512 x 512 x 50 frames (both
sequences together) on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from ctc.io import default_ndigits, frame_name, read_tiff
from ctc.synth import SYNTH_PRESETS, write_dataset
from ctc.synth.preview import preview

TARGET_S = 30.0
CROP = 320


def save_png(dataset: Path, frames: int, png_dir: Path, preset: str) -> Path:
    """Write the preview of the middle frame of sequence 01 to ``png_dir/synth_<preset>.png``."""
    from PIL import Image

    t, nd = frames // 2, default_ndigits(frames)
    image = read_tiff(dataset / "01" / frame_name("t", t, nd))
    labels = read_tiff(dataset / "01_GT" / "TRA" / frame_name("man_track", t, nd))
    h, w = image.shape
    y0, x0 = max(0, (h - CROP) // 2), max(0, (w - CROP) // 2)
    crop = (slice(y0, y0 + CROP), slice(x0, x0 + CROP))
    png_dir.mkdir(parents=True, exist_ok=True)
    out = png_dir / f"synth_{preset}.png"
    Image.fromarray(preview(image[crop], labels[crop].astype(np.int64))).save(out, optimize=True)
    return out


def save_families_png(png_dir: Path, seed: int) -> Path:
    """``png_dir/synth_families.png``: one 160 x 160 fluorescence crop per interior pattern family (same cells)."""
    from PIL import Image

    from ctc.synth import generate_sequence
    from ctc.synth.appearance import PATTERNS
    from ctc.synth.preview import normalise

    tiles = []
    for name in PATTERNS["fluo"]:
        seq = generate_sequence("fluo", 1, (160, 160), seed, appearance=(name, "round", "elongated", "kidney"))
        tiles.append(np.pad(normalise(seq.images[0]), 2, constant_values=255))
    png_dir.mkdir(parents=True, exist_ok=True)
    out = png_dir / "synth_families.png"
    Image.fromarray(np.concatenate(tiles, axis=1)).save(out, optimize=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, nargs=2, default=(512, 512), metavar=("H", "W"))
    parser.add_argument("--frames", type=int, default=50)
    parser.add_argument("--presets", default=",".join(SYNTH_PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--png", type=Path, default=None, metavar="DIR", help="also save preview PNGs here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    size = (int(args.size[0]), int(args.size[1]))
    presets = [p.strip() for p in args.presets.split(",") if p.strip()]
    print(f"synthetic dataset: 2 sequences x {args.frames} frames of {size[0]}x{size[1]}, seed {args.seed}")
    print(f"{'preset':<8}{'seconds':>9}{'ms/frame':>10}{'tracks':>8}{'divisions':>11}  verdict (< {TARGET_S:.0f} s)")
    with tempfile.TemporaryDirectory(prefix="bench_synth_") as tmp:
        for preset in presets:
            start = time.perf_counter()
            out = write_dataset(Path(tmp) / preset, preset, args.frames, size, args.seed)
            seconds = time.perf_counter() - start
            record = json.loads((out / "synth.json").read_text())
            tracks = sum(s["tracks"] for s in record["sequences"].values())
            divisions = sum(s["divisions"] for s in record["sequences"].values())
            per_frame = 1000.0 * seconds / (2 * args.frames)
            verdict = "ok" if seconds < TARGET_S else "TOO SLOW"
            print(f"{preset:<8}{seconds:>9.1f}{per_frame:>10.0f}{tracks:>8}{divisions:>11}  {verdict}")
            if args.png is not None:
                print(f"        preview: {save_png(out, args.frames, args.png, preset)}")
    if args.png is not None:
        print(f"pattern families: {save_families_png(args.png, args.seed + 3)}")


if __name__ == "__main__":
    main()
