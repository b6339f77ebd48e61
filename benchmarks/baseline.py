"""Classical segmentation-and-tracking baseline writing a CTC result folder.

Per frame: background removal, Gaussian smoothing, an Otsu threshold, hole filling, distance transform,
``peak_local_max`` markers and a watershed, removal of small objects. Linking: each object at ``t`` points to
the object at ``t-1`` it overlaps most (IoU, at least ``--min-iou``); a previous object pointed at by one object
continues in it, by two is their mother (division); with more than two, the best-overlapping one continues and
the others start new tracks. Segmenter and linker are plugged into :class:`embedtrack.inference.tracker.Tracker`, which
builds the lineage; the result is written atomically with :class:`ctc.io.ResultWriter`.

Usage::

    python benchmarks/baseline.py SEQ_DIR OUT_DIR [--mode auto|bright|dark|contrast] [--overwrite] ...

Modes (what makes a pixel foreground, after subtracting a smooth background and dividing by the noise level):
``bright`` cells brighter than the background (fluorescence; phase contrast of bright cells), ``dark`` darker
(``--invert`` is a synonym), ``contrast`` any strong deviation (phase-contrast halos, brightfield rims). ``auto``
(default) picks one from the first frame: ``bright`` when the bright tail of the residual is more than twice the
dark one, ``dark`` for the converse, ``contrast`` otherwise. Objects enclosed by a rim are filled in all modes.
In ``bright`` mode the signal is log-compressed before Otsu by default (``--compress``): fluorescent cells differ
in brightness by orders of magnitude and a linear Otsu threshold loses the dim ones; for bright phase-contrast
cells ``--compress none`` can be slightly better. In ``dark``/``contrast`` mode the filled objects are eroded by
``--erode-rim`` px, as the blurred rim reaches beyond the cell.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.filters import threshold_otsu
from skimage.segmentation import watershed
from skimage.transform import resize
from tqdm import tqdm

from ctc.errors import CTCError
from ctc.io import ResultWriter, open_sequence
from ctc.overlap import best_match, overlaps
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.inference.tracker import Tracker

logger = logging.getLogger("baseline")

MODES = ("auto", "bright", "dark", "contrast")
COMPRESS = ("auto", "log", "none")


@dataclass(frozen=True)
class BaselineParams:
    """Parameters of the classical pipeline (lengths in pixels)."""

    mode: str = "auto"
    sigma: float = 1.5  # Gaussian smoothing of the signal
    background_block: int = 32  # block size of the median background (0 = no background removal)
    min_size: int = 20  # objects smaller than this are removed
    min_distance: int = 0  # between watershed markers; 0 = from the median object size of the first frame
    min_iou: float = 0.1  # weakest overlap that still links two objects
    compress: str = "auto"  # "log", "none", or "auto" = log in bright mode (cell brightness spans decades)
    erode_rim: int = 1  # erosion (px) in dark/contrast modes: the filled rim extends beyond the cell


def background(image: np.ndarray, block: int) -> np.ndarray:
    """Smooth background: median of ``block``-sized tiles, a 5x5 median over tiles, bilinear upsampling."""
    h, w = image.shape
    bh, bw = max(1, math.ceil(h / block)), max(1, math.ceil(w / block))
    padded = np.pad(image, ((0, bh * block - h), (0, bw * block - w)), mode="reflect")
    tiles = np.median(padded.reshape(bh, block, bw, block).transpose(0, 2, 1, 3).reshape(bh, bw, -1), axis=2)
    tiles = ndi.median_filter(tiles, size=5, mode="nearest")
    return resize(tiles, (bh * block, bw * block), order=1, mode="edge")[:h, :w]


def residual(image: np.ndarray, params: BaselineParams) -> np.ndarray:
    """Image minus its background, in units of the noise level (median absolute deviation)."""
    x = image.astype(np.float32)
    if params.background_block > 0:
        x = x - background(x, params.background_block).astype(np.float32)
    else:
        x = x - np.median(x)
    mad = float(np.median(np.abs(x - np.median(x)))) * 1.4826
    return x / (mad if mad > 0 else max(float(x.std()), 1e-6))


def choose_mode(image: np.ndarray, params: BaselineParams) -> str:
    """``bright``, ``dark`` or ``contrast`` from the tails of the residual (see the module docstring)."""
    r = residual(image, params)
    bright = float(np.percentile(r, 99.5))
    dark = -float(np.percentile(r, 0.5))
    if bright > 2 * dark:
        return "bright"
    if dark > 2 * bright:
        return "dark"
    return "contrast"


def foreground(image: np.ndarray, mode: str, params: BaselineParams) -> np.ndarray:
    """Binary foreground: smoothed signal above its Otsu threshold, holes filled, small specks removed."""
    r = residual(image, params)
    signal = {"bright": r, "dark": -r, "contrast": np.abs(r)}[mode]
    smooth = ndi.gaussian_filter(signal, params.sigma)
    if params.compress == "log" or (params.compress == "auto" and mode == "bright"):
        smooth = np.log1p(np.maximum(smooth, 0))
    lo, hi = np.percentile(smooth, (0.5, 99.8))
    if hi <= lo:
        return np.zeros(image.shape, dtype=bool)
    normalised = np.clip((smooth - lo) / (hi - lo), 0, 1)
    try:
        threshold = threshold_otsu(normalised)
    except ValueError:  # a constant image
        return np.zeros(image.shape, dtype=bool)
    fg = ndi.binary_fill_holes(normalised > threshold)
    fg = ndi.binary_opening(fg, structure=np.ones((3, 3), bool))
    if mode != "bright" and params.erode_rim > 0:
        fg = ndi.binary_erosion(fg, iterations=params.erode_rim)
    return fg


def typical_min_distance(fg: np.ndarray) -> int:
    """Marker spacing from the median equivalent radius of the foreground components."""
    comps, n = ndi.label(fg)
    if n == 0:
        return 5
    areas = np.bincount(comps.ravel())[1:]
    radius = math.sqrt(float(np.median(areas)) / math.pi)
    return int(np.clip(round(0.6 * radius), 3, 50))


def split(fg: np.ndarray, min_distance: int, min_size: int) -> np.ndarray:
    """Watershed of the distance transform from its local maxima; labels 1..n dense, small objects removed."""
    comps, n = ndi.label(fg)
    if n == 0:
        return np.zeros(fg.shape, dtype=np.int32)
    dist = ndi.gaussian_filter(ndi.distance_transform_edt(fg), 1.0)
    peaks = peak_local_max(dist, min_distance=min_distance, labels=comps, exclude_border=False)
    markers = np.zeros(fg.shape, dtype=np.int32)
    markers[tuple(peaks.T)] = np.arange(1, len(peaks) + 1)
    # Components without a peak (e.g. thin ones) still become one object each.
    unmarked = np.setdiff1d(np.arange(1, n + 1), comps[tuple(peaks.T)] if len(peaks) else [])
    if unmarked.size:
        first = ndi.labeled_comprehension(comps, comps, unmarked, lambda v, p: p[0], np.int64, -1, True)
        markers.reshape(-1)[first] = np.arange(len(peaks) + 1, len(peaks) + 1 + unmarked.size)
    labels = watershed(-dist, markers, mask=fg)
    sizes = np.bincount(labels.ravel())
    keep = sizes >= min_size
    keep[0] = False
    lut = np.zeros(sizes.size, dtype=np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1)
    return lut[labels]


def segment(image: np.ndarray, mode: str, params: BaselineParams, min_distance: int) -> np.ndarray:
    """Instance labels (int32, dense) of one frame."""
    return split(foreground(image, mode, params), min_distance, params.min_size)


def link_overlap(labels_t: np.ndarray, labels_prev: np.ndarray, min_iou: float) -> dict[int, int]:
    """``{label at t: label at t-1}`` by maximal IoU; divisions for two claimants (see the module docstring)."""
    table = overlaps(labels_t, labels_prev)
    iou = table.iou()
    score = dict(zip(zip(table.a.tolist(), table.b.tolist()), iou.tolist()))
    claims: dict[int, list[int]] = {}
    for child, parent in sorted(best_match(table.a, table.b, iou).items()):
        if score[(child, parent)] >= min_iou:
            claims.setdefault(parent, []).append(child)
    links: dict[int, int] = {}
    for parent, kids in claims.items():
        if len(kids) > 2:
            kids = [max(kids, key=lambda k: score[(k, parent)])]
        for kid in kids:
            links[kid] = parent
    return links


class ClassicalSegmenter:
    """Frame -> labels; the foreground mode and marker distance are chosen on the first frame when automatic."""

    def __init__(self, params: BaselineParams) -> None:
        self.params = params
        self.mode = params.mode
        self.min_distance = params.min_distance
        self.seconds = 0.0

    def __call__(self, image: np.ndarray) -> np.ndarray:
        if self.mode == "auto":
            self.mode = choose_mode(image, self.params)
            logger.info("mode: %s", self.mode)
        if self.min_distance <= 0:
            self.min_distance = typical_min_distance(foreground(image, self.mode, self.params))
            logger.info("marker distance: %d px", self.min_distance)
        tic = time.perf_counter()
        labels = segment(image, self.mode, self.params, self.min_distance)
        self.seconds += time.perf_counter() - tic
        return labels


def tracker(params: BaselineParams) -> Tracker:
    """The classical pipeline as an embedtrack Tracker: its own segmenter and IoU linker."""
    return Tracker(InferenceConfig(), segmenter=ClassicalSegmenter(params),
                   linker=lambda labels, prev, _pred: link_overlap(labels, prev, params.min_iou))


def run(seq_dir: Path, out_dir: Path, params: BaselineParams, overwrite: bool = False) -> dict[str, float]:
    """Segment and track ``seq_dir`` into the CTC result folder ``out_dir``; returns timing figures."""
    seq = open_sequence(seq_dir)
    classical = tracker(params)
    t_link = 0.0
    with ResultWriter(out_dir, seq.ndigits, overwrite=overwrite) as writer:
        stream = classical.iter_track(tqdm(seq, total=len(seq), desc="baseline", unit="frame"), None,
                                      seq.indices[0])
        for result in stream:
            t_link += result.seconds["link"]
            writer.write_mask(result.t, result.labels)
        tracks = stream.tracks()
        writer.finish(tracks)
    n = len(seq)
    segmenter = classical.segmenter
    assert isinstance(segmenter, ClassicalSegmenter)
    return {"frames": n, "segment_s_per_frame": segmenter.seconds / n, "link_s_per_frame": t_link / n,
            "tracks": len(tracks)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("seq_dir", type=Path, help="CTC sequence folder with tNNN.tif frames")
    parser.add_argument("out_dir", type=Path, help="result folder to write (e.g. 01_RES)")
    parser.add_argument("--mode", choices=MODES, default="auto", help="foreground rule (default: auto)")
    parser.add_argument("--invert", action="store_true", help="dark cells on a bright background (= --mode dark)")
    parser.add_argument("--sigma", type=float, default=BaselineParams.sigma, help="Gaussian smoothing (px)")
    parser.add_argument("--background-block", type=int, default=BaselineParams.background_block,
                        help="tile size of the median background, 0 = none (px)")
    parser.add_argument("--min-size", type=int, default=BaselineParams.min_size, help="smallest object (px)")
    parser.add_argument("--min-distance", type=int, default=0, help="watershed marker spacing, 0 = auto (px)")
    parser.add_argument("--compress", choices=COMPRESS, default="auto",
                        help="log-compress the signal before Otsu (auto: in bright mode)")
    parser.add_argument("--erode-rim", type=int, default=BaselineParams.erode_rim,
                        help="erosion in dark/contrast modes (px)")
    parser.add_argument("--min-iou", type=float, default=BaselineParams.min_iou, help="weakest linking overlap")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing result folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    params = BaselineParams(mode="dark" if args.invert else args.mode, sigma=args.sigma,
                            background_block=args.background_block, min_size=args.min_size,
                            min_distance=args.min_distance, min_iou=args.min_iou, compress=args.compress,
                            erode_rim=args.erode_rim)
    try:
        stats = run(args.seq_dir, args.out_dir, params, overwrite=args.overwrite)
    except (CTCError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out_dir}: {stats['frames']} frames, {stats['tracks']} tracks, "
          f"segmentation {stats['segment_s_per_frame']:.3f} s/frame, linking {stats['link_s_per_frame']:.4f} s/frame")
    return 0


if __name__ == "__main__":
    sys.exit(main())
