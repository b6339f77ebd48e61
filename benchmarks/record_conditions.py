"""Record the conditions a model was trained at in its ``config.json`` (``appearance``: cell diameter, body SNR).

    python benchmarks/record_conditions.py MODEL_DIR SOURCE [SOURCE ...] [--frames A-B[,C-D]]

A SOURCE is a CTC dataset folder (each of its sequences with labels) or one sequence folder, optionally followed
by ``:A-B[,C-D]`` (frame numbers, inclusive). The labels are the full masks of ``NN_GT/SEG`` (only the frames
that have them: sparse ground truth outlines a few frames), else the silver truth ``NN_ST/SEG``. The frames
measured are, in order of precedence: the source's ranges, ``--frames``, the model's training frames when its
``config.json`` names this dataset and sequence (``training.sequences``: every frame outside ``heldout_frames``,
or the first ``train_frames``), else every labelled frame. The record (:func:`embedtrack.inference.appearance.
record_from_pairs`) replaces the ``appearance`` object of ``MODEL_DIR/config.json`` atomically; nothing else
changes. The model itself runs on up to eight of the frames for ``diameter_estimate`` (the median diameter of
its own instances, which the appearance stage compares a sequence's first pass with); ``--device`` picks where.
``--dry-run`` prints the record only. Example (the generalist's SIM+ and GOWT1 training frames together)::

    python benchmarks/record_conditions.py embedtrack/models/fluo-nuclei-generalist \\
        ../shared/data/ctc/Fluo-N2DH-SIM+/01:0-48 ../shared/data/ctc/Fluo-N2DH-GOWT1/01:0-36,48-91
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import tifffile

from embedtrack.inference.appearance import first_pass_diameter, record_from_pairs
from embedtrack.models.appearance_record import AppearanceRecord
from embedtrack.errors import EmbedTrackError
from embedtrack.models.registry import read_config, resolve_model, write_appearance


def parse_ranges(text: str, where: str) -> set[int]:
    """``"0-34,48"`` -> {0, …, 34, 48}; one error naming ``where`` otherwise."""
    frames: set[int] = set()
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match or (match[2] is not None and int(match[2]) < int(match[1])):
            raise EmbedTrackError(f"{where}: frames must look like 0-34,48-91, got {text!r}")
        frames.update(range(int(match[1]), int(match[2] or match[1]) + 1))
    return frames


def label_folder(seq_dir: Path) -> Path | None:
    """``NN_GT/SEG`` when it has masks, else ``NN_ST/SEG``, else None."""
    for kind in ("GT", "ST"):
        folder = seq_dir.with_name(f"{seq_dir.name}_{kind}") / "SEG"
        if any(folder.glob("man_seg*.tif")):
            return folder
    return None


def training_frames(training: dict[str, Any], dataset: str, name: str) -> set[int] | None:
    """The frames a model trained on in sequence ``name`` of ``dataset`` (None: not recorded for it)."""
    entry = training.get("sequences", {}).get(name) if training.get("dataset") == dataset else None
    if not isinstance(entry, dict) or "frames" not in entry:
        return None
    if "heldout_frames" in entry:
        first, end = entry["heldout_frames"]
        return set(range(entry["frames"])) - set(range(first, end))
    return set(range(entry.get("train_frames", entry["frames"])))


def sequences_of(source: str) -> Iterator[tuple[Path, set[int] | None]]:
    """(sequence folder, frames asked for in the source) of one SOURCE argument."""
    path, _, ranges = source.partition(":") if re.search(r":[\d,\s-]+$", source) else (source, "", "")
    folder = Path(path)
    frames = parse_ranges(ranges, source) if ranges else None
    if not folder.is_dir():
        raise EmbedTrackError(f"{folder}: not a folder")
    if any(folder.glob("t*.tif")):
        yield folder, frames
        return
    found = [p for p in sorted(folder.iterdir()) if re.fullmatch(r"\d+", p.name) and label_folder(p) is not None]
    if not found:
        raise EmbedTrackError(f"{folder}: no sequence with labels (NN/ with NN_GT/SEG or NN_ST/SEG)")
    for seq in found:
        yield seq, frames


def pairs_of(seq_dir: Path, frames: set[int] | None) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[int]]:
    """(raw frame, mask) pairs of the labelled frames among ``frames`` (None: all) and their numbers."""
    labels = label_folder(seq_dir)
    if labels is None:
        raise EmbedTrackError(f"{seq_dir}: no labels (neither {seq_dir.name}_GT/SEG nor {seq_dir.name}_ST/SEG)")
    pairs, used = [], []
    for file in sorted(labels.glob("man_seg*.tif")):
        digits = re.sub(r"\D", "", file.stem)
        t = int(digits)
        if frames is not None and t not in frames:
            continue
        raw = seq_dir / f"t{digits}.tif"
        if not raw.is_file():
            raise EmbedTrackError(f"{file}: no raw frame {raw.name} in {seq_dir}")
        pairs.append((tifffile.imread(raw), tifffile.imread(file)))
        used.append(t)
    return pairs, used


def _span(frames: list[int]) -> str:
    """[0, 1, 2, 5] -> '0-2,5'."""
    runs: list[list[int]] = []
    for t in frames:
        if runs and t == runs[-1][1] + 1:
            runs[-1][1] = t
        else:
            runs.append([t, t])
    return ",".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs)


#: Frames the model runs on for its diameter estimate.
MODEL_FRAMES = 8


def measure_model(model_dir: str | Path, sources: list[str], frames: str | None = None,
                  device: str = "cpu") -> AppearanceRecord:
    """The record of ``sources`` for the model in ``model_dir`` (module doc)."""
    import dataclasses

    from embedtrack.inference.tracker import Tracker

    training = read_config(resolve_model(model_dir)).training
    every = parse_ranges(frames, "--frames") if frames else None
    pairs: list[tuple[np.ndarray, np.ndarray]] = []
    names = []
    for source in sources:
        for seq_dir, asked in sequences_of(source):
            chosen = asked if asked is not None else every
            if chosen is None:
                chosen = training_frames(training, seq_dir.parent.name, seq_dir.name)
            got, used = pairs_of(seq_dir, chosen)
            if not got:
                raise EmbedTrackError(f"{seq_dir}: no labelled frame among those asked for")
            pairs += got
            names.append(f"{seq_dir.parent.name}/{seq_dir.name} frames {_span(used)}")
    record = record_from_pairs(pairs, "; ".join(names) + " (labelled frames)")
    tracker = Tracker.from_model(model_dir, device=device)
    chosen_frames = [pairs[i][0] for i in np.linspace(0, len(pairs) - 1, min(len(pairs), MODEL_FRAMES)).astype(int)]
    return dataclasses.replace(record, diameter_estimate=first_pass_diameter(chosen_frames, tracker.first_pass))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir", help="model folder (or bundled model name)")
    parser.add_argument("sources", nargs="+", help="dataset or sequence folders, each optionally :A-B[,C-D]")
    parser.add_argument("--frames", default=None, help="frame numbers for every source without its own, e.g. 0-48")
    parser.add_argument("--device", default="cpu", help="where the model runs for its diameter estimate")
    parser.add_argument("--dry-run", action="store_true", help="print the record, do not write it")
    args = parser.parse_args(argv)
    try:
        record = measure_model(args.model_dir, args.sources, args.frames, args.device)
        if not args.dry_run:
            write_appearance(args.model_dir, record)
    except EmbedTrackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(record.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
