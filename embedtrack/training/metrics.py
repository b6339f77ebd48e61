"""Segmentation accuracy on arrays, used for validation during training."""

from __future__ import annotations

import numpy as np

from ctc.labels import label_set
from ctc.overlap import best_match, overlaps


def matched_iou(pred: np.ndarray, gt: np.ndarray) -> tuple[float, int]:
    """SEG-like score: mean IoU over ground-truth objects, each matched to the predicted object covering more
    than half of it (IoU 0 when there is none). Returns (sum of IoUs, number of GT objects) so callers can
    pool several crops."""
    table = overlaps(gt, pred)
    present = label_set(gt)
    if len(present) == 0:
        return 0.0, 0
    shared = dict(zip(zip(table.a.tolist(), table.b.tolist()), table.pixels.tolist()))
    total = 0.0
    for g, p in best_match(table.a, table.b, table.pixels).items():
        inter = shared[(g, p)]
        area_g = int(table.area_a(g))
        if inter * 2 > area_g:
            total += inter / (area_g + int(table.area_b(p)) - inter)
    return float(total), len(present)
