"""Training speed on the CPU: fp32 against bf16 autocast and channels-last memory order.

One training step (forward of both frames, the losses of paper §3.2, backward, Adam) on a fixed batch of crop
pairs cut from a synthetic fluorescence sequence, in each mode, interleaved round by round so that a loaded
machine slows every mode alike; prints crop pairs per second (median over rounds) and the ratio to fp32.

    python benchmarks/bench_train_precision.py [--model Fluo-N2DH-SIM+ | --widths 16,64,128] [--crop 256]
        [--batch 4] [--steps 3] [--rounds 5] [--modes fp32 bf16 cl cl+bf16]

Modes: ``fp32``; ``bf16`` = ``torch.autocast("cpu", bfloat16)`` around the network (the losses in fp32);
``cl`` = network and inputs in ``torch.channels_last``; ``cl+bf16`` both. bf16 is fast only on CPUs with bf16
in hardware (``avx512_bf16``/``amx_bf16`` in /proc/cpuinfo; the script prints whether this one has it).
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext

import torch

MODES = ("fp32", "bf16", "cl", "cl+bf16")


def _batch(crop: int, batch: int) -> dict[str, object]:
    from ctc.synth import generate_sequence
    from embedtrack.training.crops import Augment, CropPairs, collate
    from embedtrack.training.data import TrackedSequence
    from embedtrack.inference.preprocess import normalise

    seq = generate_sequence("fluo", frames=4, size=(crop, crop), seed=7)
    parents = {t.label: t.parent for t in seq.tracks}
    tracked = TrackedSequence("01", [normalise(f).astype("float16") for f in seq.images], list(seq.masks), parents)
    pairs = CropPairs([tracked], crop, "train", count=batch, augment=Augment.off(), seed=0)
    return collate([pairs[i % len(pairs)] for i in range(batch)])


def _net(model: str, widths: str | None) -> torch.nn.Module:
    from embedtrack.models.architecture import ArchConfig, EmbedTrackNet
    from embedtrack.models.registry import load_model

    if widths:
        return EmbedTrackNet(ArchConfig(widths=tuple(int(w) for w in widths.split(","))))
    return load_model(model, "cpu")[0]


def _step(net: torch.nn.Module, opt: torch.optim.Optimizer, batch: dict[str, object], mode: str,
          coord_scale: float) -> None:
    from embedtrack.training.losses import LossWeights, embedtrack_loss

    fmt = torch.channels_last if mode.startswith("cl") else torch.contiguous_format
    image_t = batch["image_t"].contiguous(memory_format=fmt)  # type: ignore[union-attr]
    image_p = batch["image_prev"].contiguous(memory_format=fmt)  # type: ignore[union-attr]
    cast = torch.autocast("cpu", dtype=torch.bfloat16) if mode.endswith("bf16") else nullcontext()
    with cast:
        seg_t, seg_p, track = net(image_t, image_p)
    loss, _ = embedtrack_loss(seg_t.float(), seg_p.float(), track.float(), batch["labels_t"], batch["labels_prev"],
                              batch["links"], coord_scale, LossWeights())
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="Fluo-N2DH-SIM+", help="bundled model or folder whose architecture "
                        "and weights are trained")
    parser.add_argument("--widths", default=None, help="random weights at these widths instead (e.g. 16,64,128)")
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per mode and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    args = parser.parse_args()

    from embedtrack.models.device import cpu_has_bf16

    batch = _batch(args.crop, args.batch)
    nets, opts = {}, {}
    for mode in args.modes:
        net = _net(args.model, args.widths).train()
        if mode.startswith("cl"):
            net = net.to(memory_format=torch.channels_last)
        nets[mode], opts[mode] = net, torch.optim.Adam(net.parameters(), lr=1e-5)
        _step(net, opts[mode], batch, mode, float(args.crop))  # warm-up (allocations, oneDNN kernels)
    rates: dict[str, list[float]] = {m: [] for m in args.modes}
    for _ in range(args.rounds):
        for mode in args.modes:
            tic = time.perf_counter()
            for _ in range(args.steps):
                _step(nets[mode], opts[mode], batch, mode, float(args.crop))
            rates[mode].append(args.steps * args.batch / (time.perf_counter() - tic))
    print(f"CPU bf16 in hardware: {cpu_has_bf16()}; torch threads {torch.get_num_threads()}; crop {args.crop}, "
          f"batch {args.batch}, {args.rounds} rounds x {args.steps} steps, modes interleaved")
    base = statistics.median(rates[args.modes[0]])
    print(f"{'mode':10s} {'crop pairs/s':>13s} {'ratio':>7s}   (ratio to {args.modes[0]}, median of rounds)")
    for mode in args.modes:
        rate = statistics.median(rates[mode])
        print(f"{mode:10s} {rate:13.2f} {rate / base:7.2f}")


if __name__ == "__main__":
    main()
