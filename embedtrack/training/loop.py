"""Training loop (paper §4.3): Adam, one-cycle schedule, best-validation-IoU checkpoint, resumable.

The model folder receives, besides ``config.json`` + ``weights.pt`` (the best epoch so far):

* ``checkpoint.pt``: the state of the last finished epoch (model, optimiser, schedule), for ``--resume``; only
  tensors and plain values, read back with the weights-only unpickler, so a crafted file cannot run code;
* ``train_log.jsonl``: one JSON line per epoch with the losses, the validation IoU, the learning rate and time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import pickle
import re
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader

from ctc.fsutil import make_parents, remove_made, set_aside
from ctc.guard import MODEL, MODEL_FILE, MODEL_FILES, TRAIN_LOCK, check_output, remove_stale_temps
from ctc.progress import progress
from ctc.writer import append_line, write_file
from embedtrack.training.conditions import training_conditions
from embedtrack.training.crops import Augment, CropPairs, collate
from embedtrack.models.device import pick_device, resolve_precision, use_all_cores
from embedtrack.training.data import TrackedSequence, load_dataset, min_mask_size
from embedtrack.errors import EmbedTrackError
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.training.losses import LossWeights, embedtrack_loss
from embedtrack.training.metrics import matched_iou
from embedtrack.models.architecture import ArchConfig, EmbedTrackNet
from embedtrack.models.presets import Preset, get_preset
from embedtrack.models.predictions import Predictions
from embedtrack.models.registry import ModelConfig, read_config, save_model
from embedtrack.training.sparse_labels import IGNORE
from embedtrack.inference.tracker import Tracker
from embedtrack.training.lock import check_unlocked, locked

if TYPE_CHECKING:
    from embedtrack.training.distributed import DistContext

logger = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_KEYS = ("model", "optimiser", "schedule", "scaler", "epoch", "best_iou", "preset", "architecture")
LOG_NAME = "train_log.jsonl"
START_IOU = "start_val_iou"  # config.json, training: the --init model's validation IoU before fine-tuning


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
    init: str | None = None  # start from this model's weights (bundled name or folder): fine-tuning
    sparse_fill: str | None = None  # sparse labels beyond the markers: "ignore" or "grow" (None: the preset's)
    precision: str = "auto"  # auto, fp32 or bf16: network arithmetic of the training steps (see _arithmetic)


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


def validate(net: EmbedTrackNet, val: CropPairs, config: InferenceConfig, device: torch.device) -> float:
    """Mean matched IoU of the validation crops' (t frames) segmentations by the tracker against their labels."""
    tracker = Tracker(config)
    net.eval()
    iou_sum, n_obj = 0.0, 0
    with torch.no_grad():
        for i in range(len(val)):
            sample = val[i]
            seg = net.decode_seg(net.encode(sample["image_t"][None].to(device)))[0].float().cpu().numpy()
            labels = tracker.segment(Predictions.from_maps(seg))
            truth = sample["labels_t"].numpy()
            s, n = matched_iou(labels, np.where(truth == IGNORE, 0, truth))
            iou_sum, n_obj = iou_sum + s, n_obj + n
    net.train()
    return iou_sum / max(n_obj, 1)


def _check_out(out_dir: Path, inputs: list[Path], resume: bool, overwrite: bool) -> None:
    """Before any work: ``out_dir`` is none of the inputs, and an existing one is a model folder that is
    continued (``resume``) or replaced (``overwrite``), and no other run is training into it."""
    if resume and overwrite:
        raise EmbedTrackError("--resume continues the model in --out, --overwrite replaces it; give one of them")
    if not MODEL.is_new(out_dir) and not (resume or overwrite):
        raise EmbedTrackError(f"{out_dir} exists and is not empty: pass --resume to continue it, --overwrite to "
                              "replace it, or choose another --out")
    check_output(out_dir, inputs, replace=resume or overwrite, kind=MODEL)
    check_unlocked(out_dir)
    if resume and not (out_dir / CHECKPOINT_NAME).is_file():
        raise EmbedTrackError(f"{out_dir}: nothing to resume, {CHECKPOINT_NAME} is missing")


@contextlib.contextmanager
def _model_folder(out_dir: Path, overwrite: bool) -> Iterator[None]:
    """The model folder for the block: created with its missing parents (removed again when the run fails
    before writing into it), or replaced (``overwrite``: the old one is set aside and removed only when the
    run ends well, else put back); locked against a second run; leftovers of killed runs removed first."""
    for name in (*MODEL_FILES, ""):
        remove_stale_temps(out_dir / name if name else out_dir)
    with set_aside(out_dir) if overwrite else contextlib.nullcontext():
        made = make_parents(out_dir / TRAIN_LOCK)
        try:
            with locked(out_dir):
                yield
        except BaseException:
            remove_made(made)
            raise


def _val_subset(val: CropPairs, n: int) -> CropPairs:
    if len(val.refs) > n:
        keep = np.linspace(0, len(val.refs) - 1, n).round().astype(int)
        val.refs = [val.refs[i] for i in keep]
    return val


def train(dataset_dir: str | Path, preset_name: str, out_dir: str | Path, options: TrainOptions | None = None,
          resume: bool = False, command: str = "", ddp: DistContext | None = None,
          overwrite: bool = False) -> dict[str, Any]:
    """Train a model on a CTC training dataset and write the model folder. Returns a summary dict.

    ``resume`` continues the run in ``out_dir``, ``overwrite`` replaces the model there (put back if the run
    fails). A run that fails before writing anything leaves no (empty) model folder behind. With ``ddp`` (see
    :mod:`embedtrack.training.distributed`) this process is one of several under torchrun: batches are sharded,
    gradients averaged, and only rank 0 validates and writes."""
    with contextlib.ExitStack() as stack:
        return _train(dataset_dir, preset_name, Path(out_dir), options or TrainOptions(), (resume, overwrite),
                      command, ddp, stack)


def _check_options(opts: TrainOptions) -> None:
    if not (math.isfinite(opts.lr) and opts.lr > 0):
        raise EmbedTrackError(f"learning rate must be a positive number, got {opts.lr}")
    problem = widths_problem(opts.architecture.get("widths", ()), opts.architecture.get("in_channels", 1))
    if problem:
        raise EmbedTrackError(f"architecture widths {opts.architecture.get('widths')}: {problem}")


def widths_problem(widths: Any, in_channels: int = 1) -> str | None:
    """Why ``widths`` cannot build the network (each downsampler adds channels), or None if they can."""
    values = list(widths) if isinstance(widths, (list, tuple)) else []
    if len(values) != 3 or not all(isinstance(w, int) and not isinstance(w, bool) for w in values):
        return "expected three integers like 16,64,128"
    if not in_channels < values[0] < values[1] < values[2]:
        return f"each stage must be wider than the one before (and the first wider than {in_channels})"
    return None


def _train(dataset_dir: str | Path, preset_name: str, out_dir: Path, opts: TrainOptions, mode: tuple[bool, bool],
           command: str, ddp: DistContext | None, stack: contextlib.ExitStack) -> dict[str, Any]:
    resume, overwrite = mode
    _check_options(opts)
    preset = get_preset(preset_name)
    if opts.sparse_fill is not None:
        preset = dataclasses.replace(preset, sparse_fill=opts.sparse_fill)
    dataset_dir = Path(dataset_dir)
    arch = ArchConfig.from_dict(opts.architecture)
    inputs = [dataset_dir] + ([Path(opts.init)] if opts.init and Path(opts.init).is_dir() else [])
    if ddp is None or ddp.is_main:
        _check_out(out_dir, inputs, resume, overwrite)  # before reading the data
    sequences = load_dataset(dataset_dir, preset, opts.derive_links)  # fails before any training on bad data
    if ddp is None:
        stack.enter_context(_model_folder(out_dir, overwrite))
    else:
        ddp.on_main(stack.enter_context, _model_folder(out_dir, overwrite))
    device = pick_device(opts.device) if ddp is None else ddp.device
    if device.type == "cpu":
        use_all_cores()
    torch.manual_seed(opts.seed)

    min_size = min_mask_size(sequences)
    params = InferenceConfig(coord_scale=preset.coord_scale, min_size=min_size)
    batch_size = opts.batch_size or preset.batch_size
    train_set = CropPairs(sequences, preset.crop_size, "train", opts.crops_per_epoch,
                          Augment(max_shift=preset.max_shift), seed=opts.seed)
    val_set = _val_subset(CropPairs(sequences, preset.crop_size, "val", None, None, seed=opts.seed), opts.val_crops)
    steps = len(_epoch_batches(train_set, batch_size, 0, 0, ddp))

    net = EmbedTrackNet(arch).to(device)
    if opts.init and not resume:
        _load_init(net, opts.init, arch, device)
    precision, memory_format = _arithmetic(opts.precision, device)
    net = net.to(memory_format=memory_format)
    if opts.init:  # a fine-tuned model starts from its parent's (calibrated) inference settings
        params = inherited_inference(opts.init, params)
    start_iou = None
    if opts.init and not resume and (ddp is None or ddp.is_main):
        start_iou = round(validate(net, val_set, params, device), 4)
        logger.info("validation IoU of %s before fine-tuning: %.3f", opts.init, start_iou)
    optimiser = torch.optim.Adam(net.parameters(), lr=opts.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=opts.lr, total_steps=opts.epochs * steps)
    amp = precision in ("bf16", "fp16")
    scaler = torch.amp.GradScaler("cuda", enabled=precision == "fp16")
    start_epoch, best_iou = 0, -1.0
    if resume:
        state = load_checkpoint(out_dir / CHECKPOINT_NAME, device)
        if state["preset"] != preset.name or state["architecture"] != arch.to_dict():
            raise EmbedTrackError(f"{out_dir / CHECKPOINT_NAME} was trained with preset {state['preset']} and a "
                                  "different architecture; cannot resume with these options")
        _restore(out_dir / CHECKPOINT_NAME, state, net, optimiser, scaler)
        start_epoch, best_iou = state["epoch"], state["best_iou"]
        if start_epoch > opts.epochs:
            raise EmbedTrackError(f"{out_dir / CHECKPOINT_NAME}: is at epoch {start_epoch}, past --epochs "
                                  f"{opts.epochs}; give --epochs {start_epoch} or more to continue it")
        if state["schedule"]["total_steps"] == schedule.total_steps:
            _check_schedule(out_dir / CHECKPOINT_NAME, state["schedule"], schedule.state_dict())
            schedule.load_state_dict(state["schedule"])
        else:  # a different length (e.g. more --epochs): go on along the one-cycle schedule of the new length
            schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=opts.lr, total_steps=opts.epochs * steps,
                                                           last_epoch=start_epoch * steps - 1)
        logger.info("resuming %s after epoch %d (best IoU %.3f)", out_dir, start_epoch, best_iou)

    step_net = net if ddp is None else ddp.wrap(net)
    config = ModelConfig(
        name=opts.name or preset.name, preset=preset.name, architecture=arch.to_dict(),
        tile_size=preset.crop_size, inference=params.replace(fov_border=preset.fov_border),
        training=_provenance(dataset_dir, preset, sequences, opts, batch_size, command),
        appearance=training_conditions(sequences, dataset_dir.name),
    )
    if ddp is not None:
        config.training.update(ddp.provenance(batch_size, opts.lr))
    if resume and (out_dir / "config.json").is_file():
        previous = read_config(out_dir).training  # checked: one error naming the file
        config.training.update({k: previous[k] for k in ("best_epoch", "val_iou", START_IOU) if k in previous})
    if start_iou is not None:
        config.training[START_IOU] = start_iou
    if opts.init:
        config.training["inference_from"] = f"{opts.init} (the --init model's settings, fov_border and " \
                                            "coord_scale from the preset)"
    logger.info("training %s on %s: %d crops/epoch, %d val crops, batch %d, %s %s, min mask size %d px",
                preset.name, dataset_dir, len(train_set), len(val_set), batch_size, device, precision, min_size)
    net.train()
    for epoch in range(start_epoch, opts.epochs):
        tic = time.perf_counter()
        train_set.rng = np.random.default_rng(opts.seed + 1000 * (epoch + 1))
        train_set.resample()
        sums: dict[str, float] = {}
        bar = progress(_epoch_batches(train_set, batch_size, opts.seed, epoch, ddp),
                   desc=f"epoch {epoch + 1}/{opts.epochs}", leave=False, dynamic_ncols=True)
        for n_batch, batch in enumerate(bar, start=1):
            with torch.autocast(device.type, dtype=AMP_DTYPES.get(precision), enabled=amp):
                seg_t, seg_p, track = step_net(*(batch[k].to(device, memory_format=memory_format)
                                                 for k in ("image_t", "image_prev")))
            seg_t, seg_p, track = seg_t.float(), seg_p.float(), track.float()  # the losses in fp32
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
        val_iou = validate(net, val_set, params, device)
        record = {"epoch": epoch + 1, **{k: round(v / n_batches, 5) for k, v in sums.items()},
                  "val_iou": round(val_iou, 4), "lr": optimiser.param_groups[0]["lr"],
                  "seconds": round(time.perf_counter() - tic, 1)}
        append_line(out_dir / LOG_NAME, json.dumps(record))
        config.training["epochs_done"] = epoch + 1
        if val_iou > best_iou:
            best_iou = val_iou
            config.training.update(best_epoch=epoch + 1, val_iou=round(val_iou, 4))
            save_model(out_dir, net, config)
        _save_checkpoint(out_dir / CHECKPOINT_NAME, {
            "model": net.state_dict(), "optimiser": optimiser.state_dict(), "schedule": schedule.state_dict(),
            "scaler": scaler.state_dict(), "epoch": epoch + 1, "best_iou": float(best_iou), "preset": preset.name,
            "architecture": arch.to_dict()})
        logger.info("epoch %d/%d: loss %.4f, val IoU %.3f (best %.3f), %.0f s", epoch + 1, opts.epochs,
                    record.get("total", float("nan")), val_iou, best_iou, record["seconds"])
    return {"out": str(out_dir), "best_val_iou": best_iou, "min_size": min_size,
            START_IOU: config.training.get(START_IOU)}


def inherited_inference(init: str, own: InferenceConfig) -> InferenceConfig:
    """The inference settings of model ``init`` (thresholds, minimum size, linking: calibrated ones kept), with
    the coordinate scale and field-of-view border of this training run (``own``)."""
    from embedtrack.models.registry import read_config, resolve_model

    parent = read_config(resolve_model(init)).inference
    return parent.replace(coord_scale=own.coord_scale, fov_border=own.fov_border)


AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _arithmetic(name: str, device: torch.device) -> tuple[str, torch.memory_format]:
    """Precision and memory order of the training steps.

    ``auto``: fp16 autocast with gradient scaling on CUDA; on a CPU, bf16 autocast where the CPU has bf16 in
    hardware, else fp32. On a CPU the network and its inputs are in channels-last order, which oneDNN's
    convolutions run faster in either precision (``benchmarks/bench_train_precision.py``, docs/speed.md). The
    losses are computed in fp32 whatever the network's arithmetic.
    """
    precision = resolve_precision(name, device)
    return precision, torch.channels_last if device.type == "cpu" else torch.contiguous_format


def _load_init(net: EmbedTrackNet, init: str, arch: ArchConfig, device: torch.device) -> None:
    """Copy the weights of model ``init`` into ``net`` (same architecture required)."""
    from embedtrack.models.registry import load_model

    source, config = load_model(init, device)
    if config.architecture != arch.to_dict():
        raise EmbedTrackError(f"--init {init}: its architecture {config.architecture} differs from the one asked "
                              f"for ({arch.to_dict()}); leave out --widths to take the model's")
    net.load_state_dict(source.state_dict())
    logger.info("starting from the weights of %s (validation IoU %s)", config.name,
                config.training.get("val_iou", "unknown"))


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read ``checkpoint.pt`` with the weights-only unpickler: tensors and plain Python values only, so a
    crafted file cannot run code. A broken or foreign file raises one :class:`EmbedTrackError` naming it."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises many types for empty, truncated, random or crafted files
        code = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if code and isinstance(err, pickle.UnpicklingError):
            raise EmbedTrackError(f"{path}: not a checkpoint written by embedtrack train: it refers to "
                                  f"{code.group(1)}, and objects other than tensors and plain values are never "
                                  "loaded") from err
        raise EmbedTrackError(f"{path}: cannot read checkpoint, the file is empty, truncated or not a PyTorch "
                              f"file ({type(err).__name__})") from err
    missing = [key for key in CHECKPOINT_KEYS if not isinstance(state, dict) or key not in state]
    if missing:
        raise EmbedTrackError(f"{path}: not a checkpoint written by embedtrack train (missing {', '.join(missing)})")
    wrong = [key for key in ("model", "optimiser", "schedule", "scaler", "architecture")
             if not isinstance(state[key], dict)]
    wrong += [key for key, kind in (("epoch", int), ("best_iou", float), ("preset", str))
              if not isinstance(state[key], kind)]
    if wrong:
        raise EmbedTrackError(f"{path}: not a checkpoint written by embedtrack train ({', '.join(wrong)} of the "
                              "wrong type)")
    problem = _checkpoint_value_problem(state)
    if problem:
        raise EmbedTrackError(f"{path}: not a checkpoint written by embedtrack train ({problem})")
    return state


MAX_EPOCHS = 10**6


def _checkpoint_value_problem(state: dict[str, Any]) -> str | None:
    """What is out of range in a checkpoint's plain values (epoch, best IoU, schedule), or None."""
    if isinstance(state["epoch"], bool) or not 0 <= state["epoch"] <= MAX_EPOCHS:
        return f"epoch {state['epoch']!r} is not a number of epochs between 0 and {MAX_EPOCHS}"
    if not (math.isfinite(state["best_iou"]) and -1.0 <= state["best_iou"] <= 1.0):
        return f"best_iou {state['best_iou']!r} is not a finite IoU between -1 and 1"
    schedule = state["schedule"]
    for key in ("total_steps", "last_epoch", "_step_count"):
        value = schedule.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or not -1 <= value <= MAX_EPOCHS * 10**6:
            return f"schedule {key} {value!r} is not a step count"
    if schedule["last_epoch"] >= schedule["total_steps"]:
        return f"schedule last_epoch {schedule['last_epoch']} is past its total_steps {schedule['total_steps']}"
    return None


def _restore(path: Path, state: dict[str, Any], net: EmbedTrackNet, optimiser: torch.optim.Optimizer,
             scaler: torch.amp.GradScaler) -> None:
    """Load the saved model, optimiser and scaler states; a mismatch is one error naming ``path``."""
    try:
        net.load_state_dict(state["model"])
        optimiser.load_state_dict(state["optimiser"])
        scaler.load_state_dict(state["scaler"])
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        raise EmbedTrackError(f"{path}: does not fit this model and optimiser ({str(err).splitlines()[0]})") from err


def _check_schedule(path: Path, saved: dict[str, Any], fresh: dict[str, Any]) -> None:
    """A saved one-cycle schedule of the same length has the same keys and phases as a fresh one."""
    if set(saved) != set(fresh) or saved["_schedule_phases"] != fresh["_schedule_phases"]:
        raise EmbedTrackError(f"{path}: not a checkpoint written by embedtrack train (its learning-rate schedule "
                              "differs from the one-cycle schedule of this run)")


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write the checkpoint beside ``path`` and rename it into place: an interruption never leaves it broken."""
    write_file(path, lambda handle: torch.save(state, handle), MODEL_FILE, overwrite=True)


def _provenance(dataset_dir: Path, preset: Preset, sequences: list[TrackedSequence], opts: TrainOptions,
                batch_size: int, command: str) -> dict[str, Any]:
    return {
        "dataset": dataset_dir.name,
        "sequences": {s.name: {"frames": len(s), "train_frames": len(s.train_positions()),
                               "heldout_frames": list(s.heldout), "labels": str(s.report)} for s in sequences},
        "command": command,
        "options": {k: v for k, v in asdict(opts).items() if k != "architecture"},
        "batch_size": batch_size,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
    }
