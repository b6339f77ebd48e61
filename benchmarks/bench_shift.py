"""Proxy benchmark: the real-data models on their held-out frames degraded to other sequences' conditions.

Sequences of one CTC dataset differ mainly in noise and in cell size (:mod:`ctc.conditions`), and a model
trained on one sequence meets the others' conditions only at test time. This benchmark makes such conditions
from the frames at hand that no model was trained on: the held-out block of each real sequence with ground
truth (the frames recorded in its own bundled model's ``config.json``, ``training.sequences.<SEQ>.heldout_frames``,
cut as :mod:`embedtrack.training.heldout` cuts them), then

* ``snr4``, ``snr2``, ``snr1``: Gaussian noise (signal-independent, one standard deviation for the sequence)
  added until the median body SNR measured on the SEG-labelled cells reaches 4, 2, 1 (:mod:`ctc.degrade`); a
  sequence already at or below a target is skipped at that target and the table says so;
* ``x0.6``, ``x1.5``, ``x2``: frames rescaled with linear interpolation, SEG and TRA masks with nearest neighbour
  (labels a small marker would lose are put back), ``man_track.txt`` unchanged; the rescaled ground truth is
  checked against the CTC rules and the original label sets before use;
* ``clean``: the held-out frames as they are.

Each model (the dataset's own bundled model, and ``fluo-nuclei-generalist`` on the nuclei datasets) tracks every
condition through the :class:`~embedtrack.inference.tracker.Tracker` with the appearance stage on
(``cell_size="auto", denoise="auto"``) and off (``"off"``, ``"off"``), and is scored with ``ctc.evaluate``
(py-ctcmetrics) for SEG, TRA and DET. Seconds are the Tracker's wall clock (reading included, scoring not).
When the installed Tracker has no appearance stage (no ``cell_size`` / ``denoise`` keywords), only ``off`` is
run, as the plain Tracker, and a note says so.

Prints one table; ``--json`` writes the results, the conditions reached and, where the result records it, the
scale and smoothing the appearance stage applied; ``--plot`` a PNG of SEG per condition (one line per model and
stage; needs matplotlib, only for ``--plot``).

Usage::

    python benchmarks/bench_shift.py [--frames N] [--datasets D ...] [--models M ...] [--conditions clean,snr2,x2]
                                     [--stage on,off] [--out WORK] [--json FILE] [--plot FILE.png]
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

DEFAULT_REAL = ROOT.parent / "shared" / "data" / "ctc"
GENERALIST = "fluo-nuclei-generalist"
DATASETS = {  # dataset -> (sequence with ground truth at hand, models run on it; the first is its own)
    "Fluo-N2DH-SIM+": ("01", ("Fluo-N2DH-SIM+", GENERALIST)),
    "Fluo-N2DH-GOWT1": ("01", ("Fluo-N2DH-GOWT1", GENERALIST)),
    "Fluo-C2DL-MSC": ("01", ("Fluo-C2DL-MSC",)),
}
MODELS = tuple(dict.fromkeys(m for _, models in DATASETS.values() for m in models))
CONDITIONS = {"clean": ("clean", None), "snr4": ("snr", 4.0), "snr2": ("snr", 2.0), "snr1": ("snr", 1.0),
              "x0.6": ("scale", 0.6), "x1.5": ("scale", 1.5), "x2": ("scale", 2.0)}
STAGES = {"on": {"cell_size": "auto", "denoise": "auto"}, "off": {"cell_size": "off", "denoise": "off"}}
METRICS = ("SEG", "TRA", "DET")


# ---------------------------------------------------------------------------------------------- arguments


def _choices(values: list[str], allowed: tuple[str, ...] | list[str], what: str) -> list[str]:
    """Space- and/or comma-separated choices, in the given order, each checked against ``allowed``."""
    chosen = [v for value in values for v in value.split(",") if v]
    unknown = [v for v in chosen if v not in allowed]
    if unknown or not chosen:
        raise SystemExit(f"bench_shift: unknown {what} {unknown or values}; choose from {', '.join(allowed)}")
    return list(dict.fromkeys(chosen))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--real", type=Path, default=DEFAULT_REAL, help="folder of the real CTC datasets "
                        "[default: %(default)s]")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), help=f"of {', '.join(DATASETS)}")
    parser.add_argument("--models", nargs="+", default=list(MODELS), help=f"of {', '.join(MODELS)}")
    parser.add_argument("--conditions", nargs="+", default=list(CONDITIONS), help=f"of {', '.join(CONDITIONS)}")
    parser.add_argument("--stage", nargs="+", default=["on", "off"], help="appearance stage: on, off or both")
    parser.add_argument("--frames", type=int, default=None, help="only the first N (>= 2) held-out frames")
    parser.add_argument("--out", type=Path, default=None, help="work folder (new or empty; kept) [default: a "
                        "temporary folder, removed at the end]")
    parser.add_argument("--device", default="cpu", help="torch device for the models [default: %(default)s]")
    parser.add_argument("--seed", type=int, default=0, help="seed of the added noise [default: %(default)s]")
    parser.add_argument("--json", type=Path, help="write the results to this JSON file")
    parser.add_argument("--plot", type=Path, help="write a PNG of SEG per condition (needs matplotlib)")
    args = parser.parse_args(argv)
    args.datasets = _choices(args.datasets, tuple(DATASETS), "dataset")
    args.models = _choices(args.models, MODELS, "model")
    args.conditions = _choices(args.conditions, tuple(CONDITIONS), "condition")
    args.stage = _choices(args.stage, tuple(STAGES), "stage")
    if args.frames is not None and args.frames < 2:
        parser.error("--frames must be at least 2 (tracking needs two frames)")
    return args


def check_args(args: argparse.Namespace) -> None:
    """Before any work: the data of each dataset is there; refuse outputs inside the data folder and a work folder
    that holds anything."""
    for dataset in args.datasets:
        sequence = args.real / dataset / DATASETS[dataset][0]
        if not (sequence.is_dir() and sequence.with_name(f"{sequence.name}_GT").is_dir()):
            raise SystemExit(f"bench_shift: {sequence}: not found with its _GT folder; pass --real (the folder of "
                             "the real CTC datasets) or leave the dataset out with --datasets")
    protected = [args.real.resolve(), DEFAULT_REAL.parents[1].resolve()]
    for path in (args.out, args.json, args.plot):
        if path is not None and any(path.resolve().is_relative_to(p) for p in protected):
            raise SystemExit(f"bench_shift: {path}: inside the data folder {args.real}; write elsewhere")
    if args.out is not None and args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        raise SystemExit(f"bench_shift: {args.out}: exists and is not an empty folder; choose a new --out")
    if args.plot is not None:
        pyplot()  # fail before the work, not after it


def pyplot() -> Any:
    """matplotlib.pyplot with the file-only backend; one clear error when matplotlib is missing."""
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("bench_shift: --plot needs matplotlib, which is not installed (pip install matplotlib, "
                         "or the traccuracy extra); run without --plot") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ---------------------------------------------------------------------------------------------- the conditions


def heldout_block(dataset: str, sequence: str) -> tuple[int, int]:
    """Frames [first, end) held out of ``sequence`` by the dataset's own bundled model (its config.json)."""
    from embedtrack.models.registry import CONFIG_NAME, read_config, resolve_model

    folder = resolve_model(dataset)
    record = read_config(folder).training.get("sequences", {}).get(sequence, {}).get("heldout_frames")
    if not (isinstance(record, list) and len(record) == 2 and all(isinstance(v, int) for v in record)):
        raise SystemExit(f"bench_shift: {folder / CONFIG_NAME}: no training.sequences.{sequence}.heldout_frames "
                         f"[first, end] record")
    return record[0], record[1]


def cut_clean(real: Path, dataset: str, sequence: str, frames: int | None, out: Path) -> tuple[Path, list[int]]:
    """The held-out frames (the first ``frames`` of them) with their ground truth as the dataset ``out``."""
    from ctc.excerpt import write_excerpt

    first, end = heldout_block(dataset, sequence)
    end = end if frames is None else min(end, first + frames)
    write_excerpt(real / dataset, sequence, first, end, out)
    return out, list(range(first, end))


def outlined_everywhere(outlines: Any, markers: Any) -> bool:
    """Whether every TRA marker of a frame overlaps an outline: on a frame with some cells outlined, the others
    would count as background and inflate the noise the body SNR divides by."""
    import numpy as np

    present = np.unique(markers[markers != 0])
    return np.unique(markers[(markers != 0) & (outlines != 0)]).size == present.size


def labelled_pairs(clean: Path, sequence: str) -> tuple[list[Any], list[Any], list[int], str]:
    """(frames, masks, positions in the sequence, source) to measure the body SNR on: the frames whose SEG
    outlines cover every cell, else every frame with outlines, else (none outlined) the TRA markers."""
    from ctc.io import open_sequence, read_tiff

    raw = open_sequence(clean / sequence)
    gt = clean / f"{sequence}_GT"
    seg = {k: gt / "SEG" / f.name.replace("t", "man_seg", 1) for k, f in enumerate(raw.files)}
    seg = {k: read_tiff(path) for k, path in seg.items() if path.is_file()}
    tra = {k: gt / "TRA" / f.name.replace("t", "man_track", 1) for k, f in enumerate(raw.files)}
    tra = {k: read_tiff(path) for k, path in tra.items() if path.is_file()}
    full = {k: m for k, m in seg.items() if k not in tra or outlined_everywhere(m, tra[k])}
    for masks, source in ((full, "SEG, frames with every cell outlined"), (seg, "SEG, partly outlined frames"),
                          (tra, "TRA markers")):
        if masks:
            return [read_tiff(raw.files[k]) for k in masks], list(masks.values()), list(masks), source
    raise SystemExit(f"bench_shift: {clean / sequence}: no frame has SEG or TRA ground truth")


def make_noisy(clean: Path, sequence: str, target: float, seed: int, out: Path) -> dict[str, Any]:
    """The clean copy with noise that brings the median body SNR to ``target`` as ``out`` (the report of what was
    reached; ``skipped`` when the frames are already at or below it)."""
    from ctc.conditions import measure
    from ctc.degrade import add_noise, noise_for_snr, unit_noise, write_condition

    frames, masks, positions, source = labelled_pairs(clean, sequence)
    found = noise_for_snr(frames, masks, target, seed, positions)
    clean_snr = measure(zip(frames, masks)).snr_median
    if found is None:
        return {"skipped": f"already at body SNR {clean_snr:.2f} <= {target:g}", "snr_clean": round(clean_snr, 3)}
    sigma, _ = found
    write_condition(clean, sequence, out, lambda k, f: add_noise(f, sigma, unit_noise(f.shape, seed, k)))
    written, _, _, _ = labelled_pairs(out, sequence)
    reached = measure(zip(written, masks)).snr_median  # measured again on the files written
    return {"noise": "gaussian", "sigma": round(sigma, 4), "snr_clean": round(clean_snr, 3),
            "snr_reached": round(reached, 3), "measured_on": source}


def make_scaled(clean: Path, sequence: str, factor: float, out: Path) -> dict[str, Any]:
    """The clean copy rescaled by ``factor`` as ``out``, its ground truth checked (module doc)."""
    from ctc.degrade import ground_truth_problems, rescale_frame, rescale_labels, scaled_shape, write_condition
    from ctc.io import open_sequence, read_tiff

    raw = open_sequence(clean / sequence)
    before = read_tiff(raw.files[0]).shape
    shape = scaled_shape(before, factor)
    write_condition(clean, sequence, out, lambda k, f: rescale_frame(f, shape), lambda m: rescale_labels(m, shape))
    problems = ground_truth_problems(clean / f"{sequence}_GT", out / f"{sequence}_GT", shape)
    if problems:
        raise SystemExit(f"bench_shift: rescaled ground truth is not valid: {'; '.join(problems[:3])}")
    return {"shape": list(shape), "clean_shape": list(before)}


def make_condition(clean: Path, sequence: str, name: str, seed: int, out: Path) -> tuple[Path | None, dict]:
    """The dataset folder of condition ``name`` (None when skipped) and its report."""
    kind, value = CONDITIONS[name]
    if kind == "clean":
        return clean, {}
    report = make_noisy(clean, sequence, value, seed, out) if kind == "snr" else make_scaled(clean, sequence,
                                                                                               value, out)
    return (None if "skipped" in report else out), report


def conditions_of(clean: Path, sequence: str) -> dict[str, Any]:
    """Median body SNR and cell diameter of the clean held-out frames (their labelled cells)."""
    from ctc.conditions import measure

    frames, masks, _, source = labelled_pairs(clean, sequence)
    found = measure(zip(frames, masks))
    return {"snr_median": round(found.snr_median, 3), "diameter_median": round(found.diameter_median, 2),
            "measured_on": source}


# ---------------------------------------------------------------------------------------------- the runs


def stage_available(track: Any = None) -> bool:
    """Whether ``Tracker.track`` takes the appearance stage's keywords (``cell_size``, ``denoise``)."""
    if track is None:
        from embedtrack.inference.tracker import Tracker

        track = Tracker.track
    return {"cell_size", "denoise"} <= set(inspect.signature(track).parameters)


def stage_keywords(stage: str, available: bool) -> dict[str, Any]:
    """Keywords for ``Tracker.track``: the stage's settings, or none at all where the Tracker has no stage."""
    return dict(STAGES[stage]) if available else {}


def run_and_score(tracker: Any, data: Path, sequence: str, res: Path, keywords: dict[str, Any]) -> dict:
    """Track ``data/sequence`` with ``keywords``, write the CTC result ``res``, score it: SEG, TRA, DET, seconds.
    A result without any cell is not a valid CTC result; it scores 0 on all three by their definitions (every
    ground-truth object missed, AOGM equal to that of the empty result)."""
    from ctc.evaluate import evaluate

    tic = time.perf_counter()
    result = tracker.track(data / sequence, **keywords)
    seconds = time.perf_counter() - tic
    extra = {"seconds": round(seconds, 1), **applied(result)}
    gt = data / f"{sequence}_GT"
    metrics = METRICS if any((gt / "SEG").glob("man_seg*.tif")) else METRICS[1:]  # no outlined frame: no SEG
    if not any(labels.any() for labels in result.labels):
        return {**dict.fromkeys(metrics, 0.0), **extra, "note": "no cell found"}
    result.write_ctc(res)
    found = evaluate(res, gt, metrics)
    return {**{m: round(float(found[m]), 4) for m in metrics}, **extra}


def applied(result: Any) -> dict[str, float]:
    """The scale (model pixels per input pixel) and smoothing sigma the appearance stage applied, where the
    result records them (its ``appearance``); empty otherwise."""
    stage = getattr(result, "appearance", None)
    found = {key: getattr(stage, key, None) for key in ("scale", "sigma")}
    return {f"applied_{key}": round(float(v), 3) for key, v in found.items() if isinstance(v, (int, float))}


def runs(args: argparse.Namespace, work: Path, available: bool) -> tuple[list[dict], dict[str, dict]]:
    """Every (dataset, condition, model, stage) asked for; the rows and the conditions reached."""
    from embedtrack.inference.tracker import Tracker

    trackers: dict[str, Any] = {}
    rows: list[dict] = []
    reached: dict[str, dict] = {}
    stages = args.stage if available else ["off"]
    for dataset in args.datasets:
        sequence, models = DATASETS[dataset]
        models = [m for m in models if m in args.models]
        if not models:
            continue
        clean, frames = cut_clean(args.real, dataset, sequence, args.frames, work / dataset / "clean")
        reached[dataset] = {"frames": [frames[0], frames[-1] + 1], "held_out": conditions_of(clean, sequence)}
        for name in args.conditions:
            data, report = make_condition(clean, sequence, name, args.seed, work / dataset / name)
            reached[dataset][name] = report
            print(f"{dataset} {name}: {report or 'as it is'}", file=sys.stderr, flush=True)
            for model in models:
                if model not in trackers:
                    trackers[model] = Tracker.from_model(model, device=args.device)
                for stage in stages:
                    row = {"dataset": dataset, "model": model, "condition": name, "stage": stage}
                    if data is None:
                        rows.append({**row, "skipped": report["skipped"]})
                        continue
                    res = work / "res" / dataset / name / f"{model}-{stage}" / f"{sequence}_RES"
                    rows.append({**row, **run_and_score(trackers[model], data, sequence, res,
                                                        stage_keywords(stage, available))})
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    return rows, reached


# ---------------------------------------------------------------------------------------------- reporting


def _fmt(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.3f}"


def table(rows: list[dict]) -> str:
    lines = ["| dataset | model | condition | stage | SEG | TRA | DET | seconds |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "skipped" in r:
            scores = f"skipped: {r['skipped']} | | | |"
        else:
            scores = " | ".join(_fmt(r.get(m)) for m in METRICS) + f" | {r['seconds']:.1f} |"
        lines.append(f"| {r['dataset']} | {r['model']} | {r['condition']} | {r['stage']} | {scores}")
    return "\n".join(lines)


FAMILIES = {"noise (body SNR)": ("clean", "snr4", "snr2", "snr1"), "scale": ("x0.6", "clean", "x1.5", "x2")}


def plot(rows: list[dict], conditions: list[str], path: Path) -> None:
    """SEG per condition: a column per dataset, a row per family of conditions (noise, scale; ``clean`` in both),
    one line per model and stage (solid: stage on, dashed: off); written atomically."""
    from ctc.fsutil import atomic_path

    plt = pyplot()
    datasets = list(dict.fromkeys(r["dataset"] for r in rows)) or ["(no runs)"]
    families = {f: [c for c in order if c in conditions] for f, order in FAMILIES.items()}
    families = {f: order for f, order in families.items() if any(c != "clean" for c in order)} or {"": conditions}
    fig, axes = plt.subplots(len(families), len(datasets), figsize=(3.8 * len(datasets), 3.2 * len(families)),
                             squeeze=False, sharey=True)
    for row_axes, (family, order) in zip(axes, families.items()):
        for ax, dataset in zip(row_axes, datasets):
            _plot_panel(ax, [r for r in rows if r["dataset"] == dataset], order)
            ax.set_title(f"{dataset}: {family}" if family else dataset, fontsize=9)
        row_axes[0].set_ylabel("SEG")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def _plot_panel(ax: Any, rows: list[dict], order: list[str]) -> None:
    for model, stage in dict.fromkeys((r["model"], r["stage"]) for r in rows):
        seg = {r["condition"]: r["SEG"] for r in rows if (r["model"], r["stage"]) == (model, stage) and "SEG" in r}
        xs = [x for x, c in enumerate(order) if c in seg]  # a skipped condition is left out of the line
        ax.plot(xs, [seg[order[x]] for x in xs], marker="o",
                linestyle="-" if stage == "on" else "--", label=f"{model}, stage {stage}")
    ax.set_xticks(range(len(order)), order)
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6, loc="lower left")


def write_json(path: Path, content: dict) -> None:
    from ctc.fsutil import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(content, indent=1), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_args(args)
    available = stage_available()
    if not available:
        print("note: the installed Tracker has no appearance stage (no cell_size/denoise keywords): only 'off' is "
              "run, as the plain Tracker; no 'on' figures", file=sys.stderr)
    work = args.out or Path(tempfile.mkdtemp(prefix="bench_shift-"))
    try:
        rows, reached = runs(args, work, available)
    finally:
        if args.out is None:
            shutil.rmtree(work, ignore_errors=True)
    print(table(rows))
    if args.json:
        write_json(args.json, {"command": ["python", "benchmarks/bench_shift.py", *(argv or sys.argv[1:])],
                               "stage_available": available, "conditions": reached, "rows": rows})
    if args.plot:
        plot(rows, args.conditions, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
