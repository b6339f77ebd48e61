"""The lineage stage (``embedtrack/inference/lineage.py``, after paper §3.4) measured: each correction alone and all
together, end to end with the bundled model and on the ground-truth masks given as ``--masks``.

Data: the demo sequence (``embedtrack demo``: fluo, seed 2026, 20 frames of 384²), a fresh synthetic
fluorescence sequence (seed 9201, 30 frames of 384², never used in training or calibration) and the real
Fluo-N2DH-SIM+ 01 (65 frames, with 01_GT) when ``--ctc-root`` holds it. Per data set and mode the network runs
once with the stage off (``Tracker.iter_track``), its linked frames are kept, and each configuration replays
them through :class:`embedtrack.inference.lineage.LineageStage` (the stage the Tracker runs; ``--check`` confirms on
the first data set that ``Tracker.track`` with every correction on gives the same lineage). Each result is
written as a CTC folder and scored with py-ctcmetrics (TRA, DET, LNK, BC(0); SEG on the model's masks) and
with :func:`ctc.divisions.match_divisions` (division precision, recall and F1; tolerance 1 frame).

    python benchmarks/bench_lineage.py [--data demo synth sim01] [--modes model masks] [--configs off all ...]

Given masks stay as they are (``edit_given_masks`` off), so with ``--masks`` the corrections only relink.
"""

from __future__ import annotations

import os

os.environ.setdefault("TQDM_DISABLE", "1")

import argparse  # noqa: E402
import copy  # noqa: E402
import logging  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from ctc.divisions import match_divisions  # noqa: E402
from ctc.evaluate import evaluate  # noqa: E402
from ctc.io import ResultWriter, default_ndigits, open_sequence, open_tracking_gt  # noqa: E402
from ctc.lineage import Track, division_count  # noqa: E402
from ctc.synth import write_dataset  # noqa: E402
from embedtrack.models.inference_config import InferenceConfig  # noqa: E402
from embedtrack.inference.lineage import LineageStage  # noqa: E402
from embedtrack.inference.tracker import Tracker  # noqa: E402

OFF = {"division_min_frames": 0, "divide_apart": False, "restore_divisions": False, "undo_merges": False,
       "gap_frames": 0, "min_track_frames": 0}
ALL = {"division_min_frames": 3, "divide_apart": True, "restore_divisions": True, "undo_merges": True,
       "gap_frames": 2, "min_track_frames": 3}
CONFIGS: dict[str, dict[str, Any]] = {
    "off": OFF,
    "division": {**OFF, "division_min_frames": ALL["division_min_frames"]},
    "apart": {**OFF, "division_min_frames": ALL["division_min_frames"], "divide_apart": True},
    "restore": {**OFF, "division_min_frames": ALL["division_min_frames"], "restore_divisions": True},
    "merges": {**OFF, "undo_merges": True},
    "gaps": {**OFF, "gap_frames": ALL["gap_frames"]},
    "short": {**OFF, "min_track_frames": ALL["min_track_frames"]},
    "all": ALL,
    "all-but-short": {**ALL, "min_track_frames": 0},
}
DATA = {"demo": ("fluo", 20, 384, 2026), "synth": ("fluo", 30, 384, 9201)}


@dataclass
class Linked:
    """A linked frame as the Tracker hands it to the lineage stage."""

    t: int
    instances: np.ndarray
    links: dict[int, int]
    shifted: tuple[np.ndarray, np.ndarray] | None
    labels: np.ndarray


def record(tracker: Tracker, raw: Path, masks: Any) -> list[Linked]:
    """The frames of one sequence linked by §3.4, before any correction."""
    seq = open_sequence(raw)
    plain = tracker.with_overrides(**OFF)
    out = []
    for r in plain.iter_track(seq, masks, seq.indices[0], prefetch=False):
        out.append(Linked(r.t, r.instances.copy(), dict(r.links), r.shifted, r.labels))
    return out


def replay(frames: list[Linked], config: InferenceConfig, editable: bool) -> tuple[list[Linked], list[Track],
                                                                                    dict[str, int]]:
    stage = LineageStage(config, editable)
    done = stage.run(copy.deepcopy(frames))
    return done, stage.tracks(), stage.stats


def score(frames: list[Linked], tracks: list[Track], gt: Path, out: Path, seg: bool) -> dict[str, float]:
    with ResultWriter(out, default_ndigits(frames[-1].t + 1), overwrite=True) as writer:
        for f in frames:
            writer.write_mask(f.t, f.labels)
        writer.finish(tracks)
    metrics = ("SEG", "TRA", "DET", "LNK", "BC(0)") if seg else ("TRA", "DET", "LNK", "BC(0)")
    scores = evaluate(out, gt, metrics)
    tra, true_tracks = open_tracking_gt(gt / "TRA")
    by_t = {f.t: f.labels for f in frames}
    div = match_divisions(tracks, true_tracks, by_t.__getitem__, tra.read_index)
    scores.update(tracks=len(tracks), true_tracks=len(true_tracks), div=div.found, true_div=div.true,
                  div_f1=div.f1, div_p=div.precision, div_r=div.recall)
    return scores


def row(data: str, mode: str, name: str, s: dict[str, float], stats: dict[str, int]) -> str:
    seg = f"{s['SEG']:.3f}" if "SEG" in s else "–"
    return (f"| {data} | {mode} | {name} | {seg} | {s['TRA']:.4f} | {s['DET']:.4f} | {s['LNK']:.4f} | "
            f"{s['BC(0)']:.3f} | {int(s['div'])} ({int(s['true_div'])}) | {s['div_p']:.2f} / {s['div_r']:.2f} / "
            f"**{s['div_f1']:.3f}** | {int(s['tracks'])} ({int(s['true_tracks'])}) | "
            f"{stats['divisions_rejected']}/{stats['fragments_merged']}/{stats['merges_split']}/"
            f"{stats['gaps_closed']}/{stats['tracks_removed']}/{stats['divisions_restored']} |")


HEADER = ("| data | masks | lineage | SEG | TRA | DET | LNK | BC(0) | divisions (true) | division P / R / F1 | "
          "tracks (true) | rejected/merged/split/gaps/removed/restored |\n|" + "---|" * 12)


def data_sets(names: list[str], tmp: Path, ctc_root: Path) -> list[tuple[str, Path, Path]]:
    out = []
    for name in names:
        if name in DATA:
            preset, frames, size, seed = DATA[name]
            root = write_dataset(tmp / name, preset, frames, (size, size), seed, sequences=("01",))
            out.append((name, root / "01", root / "01_GT"))
        elif (ctc_root / "Fluo-N2DH-SIM+" / "01").is_dir():
            out.append(("SIM+ 01", ctc_root / "Fluo-N2DH-SIM+" / "01", ctc_root / "Fluo-N2DH-SIM+" / "01_GT"))
        else:
            print(f"{ctc_root}/Fluo-N2DH-SIM+/01: not found, skipped")
    return out


def check_tracker(tracker: Tracker, raw: Path, frames: list[Linked]) -> None:
    """``Tracker.track`` with every correction on gives the lineage the replay gives."""
    seq = open_sequence(raw)
    direct = tracker.with_overrides(**ALL).track(seq, first_index=seq.indices[0])
    _, tracks, _ = replay(frames, tracker.config.replace(**ALL), True)
    same = direct.tracks == tracks
    print(f"check: Tracker.track with all corrections == replay: {same}")
    if not same:
        raise SystemExit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", nargs="+", default=["demo", "synth", "sim01"])
    parser.add_argument("--modes", nargs="+", default=["model", "masks"], choices=["model", "masks"])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--model", default="Fluo-N2DH-SIM+")
    parser.add_argument("--ctc-root", type=Path, default=Path("/work/shared/data/ctc"))
    parser.add_argument("--check", action="store_true", help="compare Tracker.track with the replay once")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override settings of every configuration but off (e.g. gap_reach=1.5)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    extra = {k: type(getattr(InferenceConfig(), k))(eval(v)) for k, v in (s.split("=", 1) for s in args.set)}
    tracker = Tracker.from_model(args.model, device="cpu")
    with tempfile.TemporaryDirectory(prefix="embedtrack-lineage-") as name:
        tmp = Path(name)
        print(HEADER)
        for i, (data, raw, gt) in enumerate(data_sets(args.data, tmp, args.ctc_root)):
            for mode in args.modes:
                tic = time.perf_counter()
                masks = open_tracking_gt(gt / "TRA")[0] if mode == "masks" else None
                frames = record(tracker, raw, masks)
                if args.check and i == 0 and mode == "model":
                    check_tracker(tracker, raw, frames)
                for cname in args.configs:
                    over = CONFIGS[cname] if cname == "off" else {**CONFIGS[cname], **extra}
                    done, tracks, stats = replay(frames, tracker.config.replace(**over), mode == "model")
                    s = score(done, tracks, gt, tmp / f"res{i}_{mode}_{cname}", mode == "model")
                    print(row(data, "model" if mode == "model" else "GT", cname, s, stats), flush=True)
                logging.getLogger(__name__).info("%s %s: %.0f s", data, mode, time.perf_counter() - tic)


if __name__ == "__main__":
    main()
