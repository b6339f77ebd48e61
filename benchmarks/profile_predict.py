"""Where the network's time goes: torch's profiler on one 1024² frame (with its predecessor, so the tracking
decoder runs too), grouped by operator and by the network's parts.

    python benchmarks/profile_predict.py [--widths 8,32,64 | 16,64,128] [--precision bf16] [--tta] [--size 1024]

Prints the share of the encoder, the two segmentation decoders and the tracking decoder (timed separately), the
ten operators with the most self CPU time, and the achieved GFLOP/s of the convolutions.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from embedtrack.models.device import use_all_cores
from embedtrack.models.architecture import ArchConfig, EmbedTrackNet
from embedtrack.inference.predict import Predictor
from embedtrack.models.registry import load_model


def part_times(predictor: Predictor, frame: np.ndarray, repeats: int = 3) -> dict[str, float]:
    """Median seconds of encode, decode_seg and decode_track on one whole frame (no TTA), as the predictor
    calls them (precision, memory order)."""
    x = torch.from_numpy(frame)[None, None].contiguous(memory_format=predictor.memory_format)
    times: dict[str, list[float]] = {"encoder": [], "segmentation decoders": [], "tracking decoder": []}
    with torch.no_grad(), predictor._autocast():
        for _ in range(repeats):
            tic = time.perf_counter()
            feats = predictor.net.encode(x)
            times["encoder"].append((toc := time.perf_counter()) - tic)
            predictor.net.decode_seg(feats)
            times["segmentation decoders"].append((tic := time.perf_counter()) - toc)
            predictor.net.decode_track(feats, feats)
            times["tracking decoder"].append(time.perf_counter() - tic)
    return {k: float(np.median(v)) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="Fluo-N2DH-SIM+")
    parser.add_argument("--widths", default=None, help="other widths than the model's (random weights)")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--tta", action="store_true")
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()

    use_all_cores()
    net, config = load_model(args.model)
    if args.widths:
        torch.manual_seed(0)
        net = EmbedTrackNet(ArchConfig.from_dict({**config.architecture,
                                                  "widths": [int(w) for w in args.widths.split(",")]})).eval()
    predictor = Predictor(net, config.tile_size, "cpu", tta=args.tta, precision=args.precision)
    frames = [np.random.default_rng(i).random((args.size, args.size), dtype=np.float32) for i in range(2)]
    predictor(frames[0])
    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as prof:
        tic = time.perf_counter()
        predictor(frames[1])
        seconds = time.perf_counter() - tic
    events = prof.key_averages()
    flops = sum(e.flops for e in events if e.flops)
    conv_us = sum(e.self_cpu_time_total for e in events if "conv" in e.key or "mkldnn" in e.key)
    print(f"{args.size}² frame, widths {args.widths or config.architecture['widths']}, {predictor.precision}, "
          f"TTA {'8x' if args.tta else 'off'}, {torch.get_num_threads()} threads: {seconds:.2f} s under the profiler, "
          f"{flops / 1e9:.0f} GFLOP counted, {flops / 1e3 / max(conv_us, 1):.0f} GFLOP/s in convolution time")
    parts = part_times(predictor, frames[1])
    total = sum(parts.values())
    print("  " + ", ".join(f"{k} {v:.3f} s ({100 * v / total:.0f} %)" for k, v in parts.items()))
    print(events.table(sort_by="self_cpu_time_total", row_limit=10, max_name_column_width=40))


if __name__ == "__main__":
    main()
