"""Multi-process training with ``torch.distributed`` (DistributedDataParallel), started by ``torchrun``.

``torchrun --nproc-per-node N -m embedtrack.cli.train_ddp DATASET --preset P --out M …`` (or ``embedtrack train …
--ddp`` under torchrun) trains one model with N processes: each holds a replica of the network, a
:class:`~torch.utils.data.distributed.DistributedSampler` gives each its share of the crop pairs, and the
gradients are averaged after every step, so a step sees the global batch (``--batch-size``, split evenly over
the processes) at the single-process learning rate. The epoch's crop pairs come in the single-process order;
the augmentation of a crop is drawn from a generator seeded by (seed, epoch, crop index), so it does not depend
on which process loads the crop.

Rank 0 alone validates and writes (log, checkpoint, model folder); a failure it meets before training (e.g. an
existing output folder) is raised on every rank. Backends: NCCL with one GPU per process (``cuda:LOCAL_RANK``),
gloo on the CPU. Batch normalisation uses each process's share of the batch (``SyncBatchNorm`` is GPU-only).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Callable, Iterator, TypeVar

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from torch.utils.data.distributed import DistributedSampler

from embedtrack.errors import EmbedTrackError

logger = logging.getLogger(__name__)

T = TypeVar("T")
LAUNCH_HINT = "start it with torchrun, e.g. torchrun --nproc-per-node 2 -m embedtrack.cli.train_ddp DATASET --preset P --out M"


class SeededItems(Dataset):
    """A crop-pair dataset whose augmentation generator is reseeded per item from (seed, epoch, index)."""

    def __init__(self, dataset: Any, seed: int, epoch: int) -> None:
        self.dataset, self.seed, self.epoch = dataset, seed, epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Any:
        self.dataset.rng = np.random.default_rng([self.seed, self.epoch, index])
        return self.dataset[index]


class SingleProcessOrder(DistributedSampler):
    """A DistributedSampler whose epoch order is the single-process loader's, so the shards of a step are
    exactly the crops of the single-process batch. That loader (``shuffle=True`` with a generator seeded
    ``seed + epoch``) draws its workers' base seed from the generator before it shuffles; so does this."""

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        torch.empty((), dtype=torch.int64).random_(generator=gen)
        order = torch.randperm(len(self.dataset), generator=gen).tolist()[:self.total_size]
        return iter(order[self.rank:self.total_size:self.num_replicas])


@dataclass
class DistContext:
    """This process's place in the process group and the hooks the training loop calls."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def local_batch(self, global_batch: int) -> int:
        """Each process's share of the global batch."""
        if global_batch % self.world_size:
            raise EmbedTrackError(f"--batch-size {global_batch} (the global batch) is not divisible by the "
                                  f"{self.world_size} processes")
        return global_batch // self.world_size

    def on_main(self, func: Callable[..., T], *args: Any) -> T | None:
        """Run ``func`` on rank 0 only; an error it raises is raised on every rank (no rank is left waiting)."""
        result, message = None, [""]
        if self.is_main:
            try:
                result = func(*args)
            except EmbedTrackError as err:
                message = [str(err)]
        dist.broadcast_object_list(message, src=0)
        if message[0]:
            raise EmbedTrackError(message[0])
        return result

    def wrap(self, net: torch.nn.Module) -> DistributedDataParallel:
        """The replica that averages gradients over the processes (parameters broadcast from rank 0)."""
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(net, device_ids=ids)

    def loader(self, dataset: Any, global_batch: int, collate: Callable[..., Any], seed: int,
               epoch: int) -> DataLoader:
        """This process's batches of ``epoch``: the shuffled order of the single-process loader, sharded."""
        sampler = SingleProcessOrder(dataset, self.world_size, self.rank, shuffle=True, seed=seed, drop_last=True)
        sampler.set_epoch(epoch)
        return DataLoader(SeededItems(dataset, seed, epoch), batch_size=self.local_batch(global_batch),
                          sampler=sampler, collate_fn=collate, drop_last=True)

    def mean(self, sums: dict[str, float]) -> dict[str, float]:
        """The mean over the processes of per-process sums (same keys on every rank)."""
        keys = sorted(sums)
        values = torch.tensor([sums[k] for k in keys], dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(values)
        return {k: float(v) / self.world_size for k, v in zip(keys, values.tolist())}

    def provenance(self, global_batch: int, lr: float) -> dict[str, Any]:
        """Logged once, and stored in the model's training record."""
        record = {"world_size": self.world_size, "global_batch": global_batch,
                  "batch_per_process": self.local_batch(global_batch), "lr": lr,
                  "backend": dist.get_backend()}
        logger.info("distributed training: %d processes (%s), global batch %d (%d per process), learning rate %g",
                    self.world_size, record["backend"], global_batch, record["batch_per_process"], lr)
        return {"distributed": record}

    @property
    def _comm_device(self) -> torch.device:
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")

    def close(self) -> None:
        """Wait for every rank (rank 0 may still be writing), then leave the process group."""
        if dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def setup(device_name: str = "auto") -> DistContext:
    """Join the process group described by torchrun's environment (RANK, WORLD_SIZE, MASTER_ADDR, ...)."""
    missing = [k for k in ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise EmbedTrackError(f"--ddp: {', '.join(missing)} not set; {LAUNCH_HINT}")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_name == "cuda" or (device_name == "auto" and torch.cuda.is_available())
    if use_cuda and not torch.cuda.is_available():
        raise EmbedTrackError("--device cuda requested but no CUDA device is available")
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, device)
