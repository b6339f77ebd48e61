"""Why does clustering (paper §3.3) cut nuclei? Per ground-truth nucleus figures on a CTC sequence with GT.

For every frame with ``man_seg`` ground truth the model's segmentation maps are predicted and clustered, and
for every GT nucleus it reports:

* ``pieces``: predicted instances with most of their pixels inside the nucleus (1 is right, 2+ is a cut);
* ``seed peaks``: separate plateaus of local maxima (5x5) of the seediness above the seed threshold inside it;
* ``vote peaks``: the same for the votes (3x3 sums of shifted positions rounded to pixels, > ``min_votes``),
  i.e. the separate places where the nucleus's embeddings pile up;
* ``spread``: RMS distance (px) of the nucleus's shifted positions ``p + o * scale`` from their median;
* ``radius``: median kernel radius (px) where the kernel of the nucleus's pixels falls to the threshold;
* ``reach``: fraction of the nucleus's foreground pixels whose shifted position lies within the kernel radius
  of the median shifted position (1 means one seed can gather the whole nucleus);

and counts labels made of several 8-connected pieces. ``--pictures DIR`` writes the crop with the most cut
nuclei of one frame: raw / seediness / shifted positions / labels. Usage::

    python benchmarks/diagnose_cluster.py DATASET/01 [--model Fluo-N2DH-SIM+] [--pictures docs/images --tag T]
        [--refine-steps 0] [--merge-reach 1.5] [--whole-cells]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ctc.io import open_segmentation, open_sequence
from embedtrack.inference.cluster import cluster
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.inference.preprocess import normalise
from embedtrack.inference.instances import whole_cells
from embedtrack.inference.predict import Predictor
from embedtrack.models.registry import load_model


def nucleus_stats(gt: np.ndarray, labels: np.ndarray, seg: np.ndarray, scale: float,
                  params: InferenceConfig) -> np.ndarray:
    """Rows (pieces, seed peaks, vote peaks, spread, radius, reach) for every GT nucleus of one frame."""
    h, w = gt.shape
    seed = seg[4]
    fg = seed > params.seed_threshold
    ey = np.arange(h)[:, None] + seg[0] * scale
    ex = np.arange(w)[None, :] + seg[1] * scale
    seed_peaks = _peaks(np.where(fg, seed, 0), params.seed_threshold)
    vote_peaks = _peaks(_votes(seg, scale, params.seed_threshold), params.min_votes + 0.5)
    rad = np.sqrt(np.exp(params.w_s * seg[2:4]).mean(0) * math.log(1 / params.kernel_threshold)) * scale
    owner = _majority_owner(labels, gt)
    rows = []
    for g in np.unique(gt)[1:]:
        m = (gt == g) & fg
        pieces = int((owner == g).sum())
        if m.sum() < 3:
            rows.append((pieces, 0, 0, np.nan, np.nan, 0.0))
            continue
        py, px = ey[m], ex[m]
        d = np.hypot(py - np.median(py), px - np.median(px))
        r = float(np.median(rad[m]))
        inside = gt == g
        rows.append((pieces, len(np.unique(seed_peaks[inside])) - 1, len(np.unique(vote_peaks[inside])) - 1,
                     float(np.sqrt((d**2).mean())), r, float((d < r).mean())))
    return np.asarray(rows, dtype=float)


def _votes(seg: np.ndarray, scale: float, seed_threshold: float) -> np.ndarray:
    """3x3 sums of the foreground pixels' shifted positions rounded to pixels (the votes of §3.3)."""
    h, w = seg.shape[1:]
    fg = seg[4] > seed_threshold
    rows, cols = np.nonzero(fg)
    vy = np.rint(rows + seg[0][fg] * scale).astype(int)
    vx = np.rint(cols + seg[1][fg] * scale).astype(int)
    ok = (vy >= 0) & (vy < h) & (vx >= 0) & (vx < w)
    counts = np.bincount(vy[ok] * w + vx[ok], minlength=h * w).reshape(h, w).astype(float)
    return np.rint(ndi.uniform_filter(counts, 3, mode="constant") * 9)


def _peaks(values: np.ndarray, floor: float) -> np.ndarray:
    """Labelled plateaus of local maxima (5x5) above ``floor`` (a flat top counts once)."""
    top = (values > floor) & (values >= ndi.maximum_filter(values, 5) - 1e-6)
    return ndi.label(top, np.ones((3, 3)))[0]


def _majority_owner(labels: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """For each predicted label, the GT id holding most of its pixels (0 = background)."""
    n = int(labels.max()) + 1
    pairs = labels.astype(np.int64) * (int(gt.max()) + 1) + gt
    counts = np.bincount(pairs.ravel(), minlength=n * (int(gt.max()) + 1)).reshape(n, -1)
    owner = counts.argmax(1)
    owner[0] = 0
    return owner[1:]


def disconnected(labels: np.ndarray) -> int:
    """Number of labels made of more than one 8-connected piece."""
    count = 0
    for sl, lab in zip(ndi.find_objects(labels), range(1, int(labels.max()) + 1)):
        if sl is not None and ndi.label(labels[sl] == lab, np.ones((3, 3)))[1] > 1:
            count += 1
    return count


def _colours(ids: np.ndarray) -> np.ndarray:
    """A fixed bright colour per id (0 = black), ``[..., 3]`` uint8."""
    rng = np.random.default_rng(1)
    lut = rng.integers(60, 256, (int(ids.max()) + 1, 3)).astype(np.uint8)
    lut[0] = 0
    return lut[ids]


def _panel(rgb: np.ndarray, title: str, zoom: int = 2) -> "Image.Image":
    from PIL import Image, ImageDraw

    img = Image.fromarray(rgb).resize((rgb.shape[1] * zoom, rgb.shape[0] * zoom), Image.NEAREST)
    ImageDraw.Draw(img).text((4, 2), title, fill=(255, 255, 255))
    return img


def _crop_with_cuts(labels: np.ndarray, gt: np.ndarray, crop: int) -> tuple[slice, slice]:
    owner = _majority_owner(labels, gt)
    cuts = np.bincount(owner[owner > 0], minlength=int(gt.max()) + 1) > 1
    score = ndi.uniform_filter(cuts[gt].astype(float), crop)
    cy, cx = np.unravel_index(np.argmax(score), score.shape)
    y0 = int(np.clip(cy - crop // 2, 0, gt.shape[0] - crop))
    x0 = int(np.clip(cx - crop // 2, 0, gt.shape[1] - crop))
    return slice(y0, y0 + crop), slice(x0, x0 + crop)


def pictures(frame: np.ndarray, seg: np.ndarray, labels: np.ndarray, gt: np.ndarray, scale: float,
             out: Path, tag: str, corner: tuple[int, int] | None = None, crop: int = 128) -> Path:
    """Raw | seediness with maxima | shifted positions coloured by GT nucleus | labels with GT outlines, for the
    crop at ``corner`` (top, left) or else the one with the most cut nuclei."""
    from PIL import Image

    if corner is None:
        win = _crop_with_cuts(labels, gt, crop)
    else:
        win = (slice(corner[0], corner[0] + crop), slice(corner[1], corner[1] + crop))
    print(f"picture: crop rows {win[0].start}-{win[0].stop}, columns {win[1].start}-{win[1].stop}")
    grey = (np.clip(frame[win], 0, 1) * 255).astype(np.uint8)
    raw = np.repeat(grey[..., None], 3, -1)
    sd = np.clip(seg[4][win], 0, 1)
    heat = (np.stack([sd, sd**2, 0.3 * (sd > 0.5)], -1) * 255).astype(np.uint8)
    heat[ndi.binary_dilation(_peaks(_votes(seg, scale, 0.5), 5.5)[win] > 0)] = (0, 255, 255)
    g = gt[win]
    m = (g > 0) & (seg[4][win] > 0.5)
    yy, xx = np.nonzero(m)
    ey = np.rint(yy + seg[0][win][m] * scale).astype(int)
    ex = np.rint(xx + seg[1][win][m] * scale).astype(int)
    ok = (ey >= 0) & (ey < crop) & (ex >= 0) & (ex < crop)
    emb = (0.25 * _colours(g)).astype(np.uint8)
    emb[ey[ok], ex[ok]] = _colours(g[m][ok])
    lab = _colours(labels[win])
    edge = (g != ndi.grey_erosion(g, 3)) & (g > 0)
    lab[edge] = 255
    panels = [_panel(raw, "frame"), _panel(heat, "seediness; vote piles"),
              _panel(emb, "pixel+offset (GT colour)"), _panel(lab, "labels; GT outline")]
    sheet = Image.new("RGB", (sum(p.width for p in panels) + 6 * len(panels), panels[0].height), (40, 40, 40))
    for i, p in enumerate(panels):
        sheet.paste(p, (i * (p.width + 6), 0))
    path = out / f"cluster_diagnosis_{tag}.png"
    sheet.save(path, optimize=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("seq", type=Path)
    ap.add_argument("--model", default="Fluo-N2DH-SIM+")
    ap.add_argument("--pictures", type=Path)
    ap.add_argument("--tag", default="current")
    ap.add_argument("--corner", type=int, nargs=2, help="top left of the picture's crop")
    ap.add_argument("--refine-steps", type=int, help="override refine_steps (0: the paper's rule)")
    ap.add_argument("--merge-reach", type=float, default=0.0, help="merge_reach")
    ap.add_argument("--whole-cells", action="store_true", help="apply embedtrack.inference.instances.whole_cells")
    a = ap.parse_args()
    net, config = load_model(a.model, "cpu")
    params = config.inference.replace(merge_reach=a.merge_reach, refine_steps=a.refine_steps)
    predictor = Predictor(net, config.tile_size, "cpu", tta=False)
    raw = open_sequence(a.seq)
    gts = open_segmentation(a.seq.with_name(a.seq.name + "_GT") / "SEG")
    rows, n_labels, n_gt, n_split = [], 0, 0, 0
    for k, index in enumerate(gts.indices):
        frame = normalise(raw.read_index(index), params.norm_low, params.norm_high)
        gt = gts.read(k).astype(np.int64)
        pred = predictor(frame)
        seg = np.asarray(pred.seg_maps())
        labels = cluster(pred, params)
        if a.whole_cells:
            labels = whole_cells(labels)
        rows.append(nucleus_stats(gt, labels, seg, config.coord_scale, params))
        n_labels += int(labels.max())
        n_gt += len(np.unique(gt)) - 1
        n_split += disconnected(labels)
        if a.pictures and k == len(gts.indices) // 2:
            pictures(frame, seg, labels, gt, config.coord_scale, a.pictures, a.tag, a.corner)
    s = np.concatenate(rows)
    cut = s[:, 0] > 1
    print(f"{len(gts.indices)} frames: {n_labels} instances for {n_gt} GT nuclei; "
          f"{n_split} labels in several pieces")
    print(f"nuclei cut (2+ pieces): {int(cut.sum())} ({cut.mean():.1%}); missed (0): {int((s[:, 0] == 0).sum())}")
    for name, col in (("seed peaks", 1), ("vote peaks", 2), ("spread px", 3), ("kernel radius px", 4),
                      ("reach", 5)):
        print(f"  {name:17s} whole: median {np.nanmedian(s[~cut, col]):6.2f} | "
              f"cut: median {np.nanmedian(s[cut, col]):6.2f}")


if __name__ == "__main__":
    main()
