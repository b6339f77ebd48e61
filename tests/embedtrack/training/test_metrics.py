"""Tests of embedtrack.training.metrics.matched_iou (the validation score during training)."""

from __future__ import annotations

import numpy as np

from embedtrack.training.metrics import matched_iou


def test_matched_iou_counts_only_predictions_covering_more_than_half() -> None:
    gt = np.zeros((20, 20), np.uint16)
    pred = np.zeros_like(gt)
    gt[0:10, 0:10] = 1      # 100 px
    pred[0:10, 0:8] = 4     # 80 px inside: IoU 0.8
    gt[12:16, 12:16] = 2    # 16 px
    pred[12:16, 12:14] = 5  # exactly half: not matched
    gt[0:2, 18:20] = 3      # no prediction at all
    total, n = matched_iou(pred, gt)
    assert n == 3 and total == 0.8


def test_matched_iou_without_ground_truth() -> None:
    pred = np.ones((4, 4), np.uint16)
    assert matched_iou(pred, np.zeros_like(pred)) == (0.0, 0)
