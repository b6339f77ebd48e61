"""The `embedtrack` command line: a click group whose commands are imported only when used.

Each command lives in its own module `embedtrack/cli/<name>.py` exposing a click command named `command`,
so `embedtrack --help` stays instant (no torch import).

May import every layer below it (``io``, ``training``, ``inference``, ``models``, ``errors``, ``openmp``, ``ctc``);
only ``embedtrack.__main__`` and the launcher ``cli.train_ddp`` import the group; checked by
``tests/test_layering.py``.
"""

from __future__ import annotations

import importlib
import signal
import threading
from types import FrameType
from typing import Any

import click

from embedtrack.cli._output import output_options, start_output
from embedtrack.openmp import quiet_openmp_waiting

# command name -> (module, one-line help shown by `embedtrack --help`)
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("embedtrack.cli.demo", "Run the bundled model on a synthetic sequence and score it (no data needed)."),
    "run": ("embedtrack.cli.run", "Segment and track a time-lapse (CTC folder, TIFF folder or stack, zarr)."),
    "train": ("embedtrack.cli.train", "Train a model on a CTC training dataset."),
    "models": ("embedtrack.cli.models", "List the bundled models and their provenance."),
    "synth": ("embedtrack.cli.synth", "Write a synthetic CTC dataset with full ground truth."),
    "validate": ("embedtrack.cli.validate", "Check a CTC result folder against the CTC consistency rules."),
    "evaluate": ("embedtrack.cli.evaluate", "Score a CTC result against ground truth (SEG, TRA, DET, ...)."),
    "stats": ("embedtrack.cli.stats", "Cell counts and motility of a CTC dataset (paper Table 1, right half)."),
    "show": ("embedtrack.cli.show", "Render a result as an animated GIF with outlines and a lineage plot."),
    "calibrate": ("embedtrack.cli.calibrate", "Choose a model's thresholds on annotated frames (no retraining)."),
    "batch": ("embedtrack.cli.batch", "Run many sequences (ROOT/<DATASET>/<SEQ>) on a Dask cluster, resumably."),
    "download": ("embedtrack.cli.download", "Download a CTC dataset zip and unpack it."),
    "export": ("embedtrack.cli.export", "Export a result as a tracks table (CSV), a geff graph or napari layers."),
}


class LazyGroup(click.Group):
    """A click group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        quiet_openmp_waiting()  # before the command's module imports torch
        module = importlib.import_module(COMMANDS[cmd_name][0])
        return output_options(module.command)  # -v, -q, --debug after the command name too

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@output_options
@click.version_option(package_name="embedtrack")
@click.pass_context
def main(ctx: click.Context, verbose: int, quiet: bool, debug: bool) -> None:
    """EmbedTrack: simultaneous cell segmentation and tracking for the Cell Tracking Challenge.

    -v, -q and --debug may also follow the command name (embedtrack run ... -q).
    """
    start_output(ctx)
    _stop_on_sigterm(ctx)


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


def _terminated(signum: int, frame: FrameType | None) -> None:
    from ctc import progress

    for sig in STOP_SIGNALS:  # a second signal must not cut the cleanup short (SIGKILL still ends it)
        signal.signal(sig, signal.SIG_IGN)
    progress.request_stop(f"signal {signum}")  # raised again at the next step if this one is swallowed
    raise KeyboardInterrupt(f"signal {signum}")


def _stop_on_sigterm(ctx: click.Context) -> None:
    """SIGTERM (``kill``, ``docker stop``) and SIGHUP (closed terminal) stop a command the way Ctrl-C does:
    temporary files are removed, and further signals are ignored from then on (the command is ending)."""
    if threading.current_thread() is not threading.main_thread():
        return
    from ctc import progress

    for sig in STOP_SIGNALS:
        previous = signal.signal(sig, _terminated)
        ctx.call_on_close(lambda sig=sig, previous=previous: _restore(sig, previous))
    ctx.call_on_close(lambda: progress.request_stop(None))


def _restore(sig: int, previous: Any) -> None:
    """Put back the handler the command found, unless a stop signal arrived: then the process is ending, and a
    late signal (sent a few ms after the first) must not kill it before it exits with its error status."""
    if signal.getsignal(sig) is _terminated:
        signal.signal(sig, previous)
