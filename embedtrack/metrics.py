"""Segmentation accuracy on arrays, used for validation during training."""

from __future__ import annotations

import numpy as np


def matched_iou(pred: np.ndarray, gt: np.ndarray) -> tuple[float, int]:
    """SEG-like score: mean IoU over ground-truth objects, each matched to the predicted object covering more
    than half of it (IoU 0 when there is none). Returns (sum of IoUs, number of GT objects) so callers can
    pool several crops."""
    gt = gt.astype(np.int64).ravel()
    pred = pred.astype(np.int64).ravel()
    n_gt, n_pred = int(gt.max()) + 1, int(pred.max()) + 1
    both = (gt > 0) & (pred > 0)
    inter = np.bincount(gt[both] * n_pred + pred[both], minlength=n_gt * n_pred).reshape(n_gt, n_pred)
    area_gt = np.bincount(gt, minlength=n_gt)
    area_pred = np.bincount(pred, minlength=n_pred)
    present = np.flatnonzero(area_gt[1:]) + 1
    if len(present) == 0:
        return 0.0, 0
    best = inter[present].argmax(1)
    best_inter = inter[present, best]
    matched = best_inter * 2 > area_gt[present]
    union = area_gt[present] + area_pred[best] - best_inter
    iou = np.where(matched, best_inter / np.maximum(union, 1), 0.0)
    return float(iou.sum()), len(present)
