"""`torchrun --nproc-per-node N -m embedtrack.cli.train_ddp DATASET --preset P --out M [train options]`.

The same as ``embedtrack train … --ddp``: every process started by torchrun joins the process group and trains
one shared model with DistributedDataParallel (see :mod:`embedtrack.training.distributed`); rank 0 alone writes.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from embedtrack.cli import main as cli

    cli(["train", "--ddp", *(sys.argv[1:] if argv is None else argv)], prog_name="embedtrack train")


if __name__ == "__main__":
    main()
