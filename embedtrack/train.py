"""Training loop (paper §4.3): Adam, one-cycle schedule, best-validation-IoU checkpoint, resumable.

The model folder receives, besides ``config.json`` + ``weights.pt`` (the best epoch so far):

* ``checkpoint.pt``: the state of the last finished epoch (model, optimiser, schedule), for ``--resume``;
* ``train_log.jsonl``: one JSON line per epoch with the losses, the validation IoU, the learning rate and time.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from embedtrack.cluster import ClusterParams, cluster
from embedtrack.crops import Augment, CropPairs, collate
from embedtrack.device import pick_device, use_all_cores
from embedtrack.data import TrackedSequence, load_dataset, min_mask_size
from embedtrack.errors import EmbedTrackError
from embedtrack.losses import LossWeights, embedtrack_loss
from embedtrack.metrics import matched_iou
from embedtrack.model import ArchConfig, EmbedTrackNet
from embedtrack.presets import Preset, get_preset
from embedtrack.registry import ModelConfig, PostprocessConfig, save_model

if TYPE_CHECKING:
    from embedtrack.distributed import DistContext

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
LOG_NAME = "train_log.jsonl"


@dataclass
class TrainOptions:
    """Options of one training run; defaults follow the paper."""

    epochs: int = 15
    crops_per_epoch: int | None = None  # None: every overlapping grid crop of the training frames
    batch_size: int | None = None  # None: the preset's
    lr: float = 5e-4
    device: str = "auto"
    val_crops: int = 32
    seed: int = 0
    derive_links: bool = False
    architecture: dict[str, Any] = field(default_factory=lambda: ArchConfig().to_dict())
    name: str | None = None  # model name stored in the config (default: the preset's name)


def _batches(dataset: CropPairs, batch_size: int, seed: int) -> DataLoader:
    gen = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=True, collate_fn=collate, generator=gen,
                      drop_last=len(dataset) >= batch_size)


def _epoch_batches(dataset: CropPairs, batch_size: int, seed: int, epoch: int,
                   ddp: DistContext | None) -> DataLoader:
    """The batches of one epoch: all of them, or under DDP this process's share of each global batch."""
    if ddp is None:
        return _batches(dataset, batch_size, seed + epoch)
    return ddp.loader(dataset, batch_size, collate, seed, epoch)


def validate(net: EmbedTrackNet, val: CropPairs, coord_scale: float, params: ClusterParams,
             device: torch.device) -> float:
    """Mean matched IoU of clustered segmentations of the validation crops (t frames) against their labels."""
    net.eval()
    iou_sum, n_obj = 0.0, 0
    with torch.no_grad():
        for i in range(len(val)):
            sample = val[i]
            seg = net.decode_seg(net.encode(sample["image_t"][None].to(device)))[0].float().cpu().numpy()
            labels = cluster(seg[:2], seg[2:4], seg[4], coord_scale, params)
            s, n = matched_iou(labels, sample["labels_t"].numpy())
            iou_sum, n_obj = iou_sum + s, n_obj + n
    net.train()
    return iou_sum / max(n_obj, 1)


def _prepare_out(out_dir: Path, resume: bool) -> None:
    if resume:
        if not (out_dir / CHECKPOINT_NAME).is_file():
            raise EmbedTrackError(f"{out_dir}: nothing to resume, {CHECKPOINT_NAME} is missing")
        return
    if out_dir.exists() and any(out_dir.iterdir()):
        raise EmbedTrackError(f"{out_dir} exists and is not empty: pass --resume to continue it or choose another --out")
    out_dir.mkdir(parents=True, exist_ok=True)


def _val_subset(val: CropPairs, n: int) -> CropPairs:
    if len(val.refs) > n:
        keep = np.linspace(0, len(val.refs) - 1, n).round().astype(int)
        val.refs = [val.refs[i] for i in keep]
    return val


def train(dataset_dir: str | Path, preset_name: str, out_dir: str | Path, options: TrainOptions | None = None,
          resume: bool = False, command: str = "", ddp: DistContext | None = None) -> dict[str, Any]:
    """Train a model on a CTC training dataset and write the model folder. Returns a summary dict.

    With ``ddp`` (see :mod:`embedtrack.distributed`) this process is one of several under torchrun: batches are
    sharded, gradients averaged, and only rank 0 validates and writes."""
    opts = options or TrainOptions()
    preset = get_preset(preset_name)
    out_dir, dataset_dir = Path(out_dir), Path(dataset_dir)
    arch = ArchConfig.from_dict(opts.architecture)
    sequences = load_dataset(dataset_dir, preset, opts.derive_links)  # fails before any training on bad data
    if ddp is None:
        _prepare_out(out_dir, resume)
    else:
        ddp.on_main(_prepare_out, out_dir, resume)
    device = pick_device(opts.device) if ddp is None else ddp.device
    if device.type == "cpu":
        use_all_cores()
    torch.manual_seed(opts.seed)

    min_size = min_mask_size(sequences)
    params = ClusterParams(min_size=min_size)
    batch_size = opts.batch_size or preset.batch_size
    train_set = CropPairs(sequences, preset.crop_size, "train", opts.crops_per_epoch,
                          Augment(max_shift=preset.max_shift), seed=opts.seed)
    val_set = _val_subset(CropPairs(sequences, preset.crop_size, "val", None, None, seed=opts.seed), opts.val_crops)
    steps = len(_epoch_batches(train_set, batch_size, 0, 0, ddp))

    net = EmbedTrackNet(arch).to(device)
    optimiser = torch.optim.Adam(net.parameters(), lr=opts.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=opts.lr, total_steps=opts.epochs * steps)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    start_epoch, best_iou = 0, -1.0
    if resume:
        state = torch.load(out_dir / CHECKPOINT_NAME, map_location=device, weights_only=False)
        if state["preset"] != preset.name or state["architecture"] != arch.to_dict():
            raise EmbedTrackError(f"{out_dir / CHECKPOINT_NAME} was trained with preset {state['preset']} and a "
                                  "different architecture; cannot resume with these options")
        net.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, best_iou = state["epoch"], state["best_iou"]
        if state["schedule"].get("total_steps") == schedule.total_steps or opts.epochs <= start_epoch:
            schedule.load_state_dict(state["schedule"])
        else:  # a different length (e.g. more --epochs): go on along the one-cycle schedule of the new length
            schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=opts.lr, total_steps=opts.epochs * steps,
                                                           last_epoch=start_epoch * steps - 1)
        logger.info("resuming %s after epoch %d (best IoU %.3f)", out_dir, start_epoch, best_iou)

    step_net = net if ddp is None else ddp.wrap(net)
    config = ModelConfig(
        name=opts.name or preset.name, preset=preset.name, architecture=arch.to_dict(),
        coord_scale=preset.coord_scale, tile_size=preset.crop_size,
        postprocess=PostprocessConfig(min_size=min_size),
        training=_provenance(dataset_dir, preset, sequences, opts, batch_size, command),
    )
    if ddp is not None:
        config.training.update(ddp.provenance(batch_size, opts.lr))
    if resume and (out_dir / "config.json").is_file():
        previous = json.loads((out_dir / "config.json").read_text()).get("training", {})
        config.training.update({k: previous[k] for k in ("best_epoch", "val_iou") if k in previous})
    logger.info("training %s on %s: %d crops/epoch, %d val crops, batch %d, %s, min mask size %d px",
                preset.name, dataset_dir, len(train_set), len(val_set), batch_size, device, min_size)
    net.train()
    for epoch in range(start_epoch, opts.epochs):
        tic = time.perf_counter()
        train_set.rng = np.random.default_rng(opts.seed + 1000 * (epoch + 1))
        train_set.resample()
        sums: dict[str, float] = {}
        bar = tqdm(_epoch_batches(train_set, batch_size, opts.seed, epoch, ddp),
                   desc=f"epoch {epoch + 1}/{opts.epochs}", leave=False, dynamic_ncols=True)
        for n_batch, batch in enumerate(bar, start=1):
            with torch.autocast(device.type, enabled=amp):
                seg_t, seg_p, track = step_net(batch["image_t"].to(device), batch["image_prev"].to(device))
            loss, parts = embedtrack_loss(seg_t, seg_p, track, batch["labels_t"].to(device),
                                          batch["labels_prev"].to(device), [x.to(device) for x in batch["links"]],
                                          preset.coord_scale, LossWeights())
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            if schedule.last_epoch < schedule.total_steps - 1:
                schedule.step()
            for key, value in parts.items():
                sums[key] = sums.get(key, 0.0) + value
            bar.set_postfix(loss=f"{sums['total'] / n_batch:.4f}")
        n_batches = max(1, len(bar))
        if ddp is not None:
            sums = ddp.mean(sums)
            if not ddp.is_main:  # rank 0 alone validates and writes
                continue
        val_iou = validate(net, val_set, preset.coord_scale, params, device)
        record = {"epoch": epoch + 1, **{k: round(v / n_batches, 5) for k, v in sums.items()},
                  "val_iou": round(val_iou, 4), "lr": optimiser.param_groups[0]["lr"],
                  "seconds": round(time.perf_counter() - tic, 1)}
        with open(out_dir / LOG_NAME, "a", encoding="utf-8") as log:
            log.write(json.dumps(record) + "\n")
        config.training["epochs_done"] = epoch + 1
        if val_iou > best_iou:
            best_iou = val_iou
            config.training.update(best_epoch=epoch + 1, val_iou=round(val_iou, 4))
            save_model(out_dir, net, config)
        _save_checkpoint(out_dir / CHECKPOINT_NAME, {
            "model": net.state_dict(), "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(),
            "scaler": scaler.state_dict(), "epoch": epoch + 1, "best_iou": best_iou, "preset": preset.name,
            "architecture": arch.to_dict()})
        logger.info("epoch %d/%d: loss %.4f, val IoU %.3f (best %.3f), %.0f s", epoch + 1, opts.epochs,
                    record.get("total", float("nan")), val_iou, best_iou, record["seconds"])
    return {"out": str(out_dir), "best_val_iou": best_iou, "min_size": min_size}


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write the checkpoint beside ``path`` and rename it into place: an interruption never leaves it broken."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _provenance(dataset_dir: Path, preset: Preset, sequences: list[TrackedSequence], opts: TrainOptions,
                batch_size: int, command: str) -> dict[str, Any]:
    return {
        "dataset": str(dataset_dir.resolve()),
        "sequences": {s.name: {"frames": len(s), "train_frames": s.n_train, "labels": str(s.report)} for s in sequences},
        "command": command,
        "options": {k: v for k, v in asdict(opts).items() if k != "architecture"},
        "batch_size": batch_size,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }
