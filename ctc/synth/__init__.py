"""Synthetic Cell Tracking Challenge datasets with full ground truth.

Three modality presets (:data:`SYNTH_PRESETS`): ``fluo`` (fluorescent nuclei), ``phc`` (phase contrast) and
``bf`` (brightfield), and ``fluo-moderate`` (``fluo`` in narrower, moderate conditions: the demo's data). A sequence is made in three steps: a cell population is simulated in a field larger than
the view (:mod:`ctc.synth.motion`: random walk with drift, fast movers, growth, deformation, contact,
divisions), each frame is rasterised into instance labels and rendered through a modality model
(:mod:`ctc.synth.render`: texture, halos or rims, uneven illumination and gradients, haze, out-of-focus cells,
debris, bleaching, blur, Poisson-Gaussian and speckle noise, hot pixels), and the labels are turned into
CTC-valid tracks (:mod:`ctc.synth.gt`). Every appearance and motion parameter is drawn per sequence from the
preset's ranges (:mod:`ctc.synth.presets`); interior patterns and outlines are drawn per cell from named
families (:mod:`ctc.synth.appearance`) that can be chosen or held out. Everything is deterministic for a seed.

>>> seq = generate_sequence("fluo", frames=5, size=(64, 64), seed=0)
>>> len(seq.images), seq.images[0].dtype.name, seq.masks[0].dtype.name
(5, 'uint16', 'uint16')
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ctc.errors import CTCError
from ctc.guard import SYNTH_DATASET, Kind
from ctc.io import TRACK_FILE_GT, default_ndigits, frame_name, write_tiff, write_track_file
from ctc.limits import check_size_option, memory_bytes
from ctc.lineage import Track
from ctc.progress import progress
from ctc.synth.appearance import families as appearance_families
from ctc.synth.appearance import select as select_appearance
from ctc.synth.gt import MIN_AREA, build_ground_truth, clean_frame
from ctc.synth.motion import simulate
from ctc.synth.presets import SYNTH_PRESETS, Preset, SequenceParams, sample_params
from ctc.synth.render import Renderer, rasterise
from ctc.writer import staged_folder

__all__ = ["SYNTH_PRESETS", "Preset", "SequenceParams", "SynthSequence", "appearance_families",
           "generate_sequence", "sequence_seed", "write_dataset"]

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 25  # a draw whose view is empty in some frame is replaced by the next draw
SEG_FRACTION = 0.2  # share of frames with a (sparse) GT/SEG mask


@dataclass
class SynthSequence:
    """One synthetic sequence in memory.

    ``images``: raw frames (uint16 for fluo/bf, uint8 for phc); ``masks``: uint16 label images whose labels are
    the CTC track ids of ``tracks`` (full masks, usable as TRA markers, SEG and ST); ``seg_frames``: the frames
    that get a sparse GT/SEG mask; ``params``: the appearance and motion parameters drawn for this sequence.
    """

    images: list[np.ndarray]
    masks: list[np.ndarray]
    tracks: list[Track]
    seg_frames: list[int]
    params: SequenceParams
    seed: int


#: Memory a sequence holds per pixel of each frame while it is built (labels, masks, image; measured: 13.4).
BYTES_PER_PIXEL = 14


def _check_args(preset: str, frames: int, size: tuple[int, int]) -> None:
    if preset not in SYNTH_PRESETS:
        raise CTCError(f"unknown synthetic preset {preset!r}; choose one of {', '.join(SYNTH_PRESETS)}")
    if frames < 1:
        raise CTCError(f"synthetic sequence needs at least 1 frame, got {frames}")
    if len(size) != 2 or min(size) < 16:
        raise CTCError(f"synthetic frame size must be two numbers >= 16 (H W), got {tuple(size)}")
    check_size_option((int(size[0]), int(size[1])), "--size")  # the same cap as for frames read
    need, memory = frames * int(size[0]) * int(size[1]) * BYTES_PER_PIXEL, memory_bytes()
    if memory is not None and need > memory:
        raise CTCError(f"--frames {frames} --size {size[0]} {size[1]}: a synthetic sequence is built in memory, "
                       f"about {need / 1e9:,.1f} GB, more than this machine's {memory / 1e9:,.1f} GB; choose fewer "
                       "frames or a smaller size")


def sequence_seed(seed: int, index: int) -> int:
    """Seed of the ``index``-th sequence of a dataset: ``seed`` itself for the first, derived ones after."""
    if index == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint32)[0])


def generate_sequence(preset: str, frames: int, size: tuple[int, int], seed: int,
                      appearance: tuple[str, ...] | None = None) -> SynthSequence:
    """Simulate and render one sequence of ``frames`` frames of ``size`` (H, W) pixels (deterministic).

    ``appearance``: the appearance families (:mod:`ctc.synth.appearance`) the cells may draw; default all.
    """
    _check_args(preset, frames, size)
    families = select_appearance(SYNTH_PRESETS[preset].name, appearance)
    shape = (int(size[0]), int(size[1]))
    for attempt in range(MAX_ATTEMPTS):
        param_ss, sim_ss, render_ss, seg_ss = np.random.SeedSequence([int(seed), attempt]).spawn(4)
        params = sample_params(SYNTH_PRESETS[preset], np.random.default_rng(param_ss), families)
        sim = simulate(params, frames, shape, np.random.default_rng(sim_ss))
        renderer = Renderer(params, shape, np.random.default_rng(render_ss))
        images: list[np.ndarray] = []
        raw: list[np.ndarray] = []
        for t, cells in enumerate(progress(sim.frames, desc=f"synth {preset} seed {seed}", leave=False,
                                       disable=frames < 20)):
            raster = rasterise(cells, shape, renderer.textures, params.patterns, dome=renderer.dome)
            labels = clean_frame(raster.labels, MIN_AREA)
            if not labels.any():
                logger.debug("seed %d attempt %d: frame %d has no cell in view; drawing again", seed, attempt, t)
                break
            raw.append(labels.astype(np.int32))
            images.append(renderer.render(raster, t))
        else:
            masks, tracks = build_ground_truth(raw, sim.parents, sim.births, MIN_AREA)
            seg_rng = np.random.default_rng(seg_ss)
            n_seg = max(1, int(round(SEG_FRACTION * frames)))
            seg_frames = sorted(int(i) for i in seg_rng.choice(frames, n_seg, replace=False))
            logger.debug("%s seed %d: %d tracks, %d divisions", preset, seed, len(tracks),
                         sum(1 for tr in tracks if tr.parent))
            return SynthSequence(images, masks, tracks, seg_frames, params, int(seed))
    raise CTCError(f"synthetic {preset} sequence of size {shape} (seed {seed}): no draw in {MAX_ATTEMPTS} had "
                   "a cell in every frame; use a larger --size")


def _write_sequence(root: Path, name: str, seq: SynthSequence) -> None:
    """Write the CTC folders of one sequence below ``root``."""
    nd = default_ndigits(len(seq.images))
    raw_dir, tra_dir = root / name, root / f"{name}_GT" / "TRA"
    seg_dir, st_dir = root / f"{name}_GT" / "SEG", root / f"{name}_ST" / "SEG"
    for folder in (raw_dir, tra_dir, seg_dir, st_dir):
        folder.mkdir(parents=True)
    for t, (image, mask) in enumerate(zip(seq.images, seq.masks)):
        write_tiff(raw_dir / frame_name("t", t, nd), image)
        write_tiff(tra_dir / frame_name("man_track", t, nd), mask)
        write_tiff(st_dir / frame_name("man_seg", t, nd), mask)
        if t in seq.seg_frames:
            write_tiff(seg_dir / frame_name("man_seg", t, nd), mask)
    write_track_file(tra_dir / TRACK_FILE_GT, seq.tracks)


def write_dataset(out_dir: str | Path, preset: str, frames: int, size: tuple[int, int], seed: int,
                  sequences: Sequence[str] = ("01", "02"), overwrite: bool = False,
                  appearance: Sequence[str] | None = None, hold_out: Sequence[str] = (),
                  kind: Kind = SYNTH_DATASET) -> Path:
    """Write a complete CTC training dataset (raw frames, GT/TRA, sparse GT/SEG, ST/SEG) to ``out_dir``.

    Sequence ``sequences[i]`` uses :func:`sequence_seed` ``(seed, i)``. The dataset is written to a temporary
    folder beside ``out_dir`` and renamed into place when complete. An existing non-empty ``out_dir`` is only
    replaced with ``overwrite`` and when it is of ``kind`` (see :mod:`ctc.guard`); otherwise an error is raised
    before any work.
    A file ``synth.json`` records the arguments and the parameters drawn for every sequence.
    ``appearance`` / ``hold_out``: appearance families to use (default all) and to leave out.
    """
    _check_args(preset, frames, size)
    families = select_appearance(SYNTH_PRESETS[preset].name, tuple(appearance) if appearance else None,
                                 tuple(hold_out))
    target = Path(out_dir)
    with staged_folder(target, kind, overwrite=overwrite) as staging:
        record: dict[str, object] = {"preset": preset, "frames": frames, "size": list(size), "seed": seed,
                                     "appearance": list(families), "sequences": {}}
        for i, name in enumerate(sequences):
            seq = generate_sequence(preset, frames, size, sequence_seed(seed, i), families)
            _write_sequence(staging.path, name, seq)
            record["sequences"][name] = {"seed": seq.seed, "tracks": len(seq.tracks),  # type: ignore[index]
                                         "divisions": sum(1 for tr in seq.tracks if tr.parent),
                                         "params": asdict(seq.params)}
        staging.file("synth.json", json.dumps(record, indent=2))
    logger.info("wrote synthetic %s dataset %s (%s, %d frames of %dx%d)", preset, target,
                "+".join(sequences), frames, size[0], size[1])
    return target
