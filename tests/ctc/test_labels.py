"""Tests of ctc.labels: the label set of an image and its compact relabelling, on both code paths."""

from __future__ import annotations

import numpy as np
import pytest

from ctc.labels import label_set, unique_inverse


@pytest.mark.parametrize("image", [
    np.array([[0, 7, 7], [3, 0, 9]], np.uint16),
    np.array([[5, 7], [3, 9]], np.int32),                  # no background pixel
    np.array([[0, 1 << 30], [3, 3]], np.int64),            # beyond the bincount fast path
    np.array([[0, -2], [3, 3]], np.int32),                 # negative labels
    np.array([[0.0, 2.0], [3.0, 3.0]]),                    # whole numbers stored as floats
    np.zeros((0, 4), np.uint16),
])
def test_label_set_and_unique_inverse_agree_with_numpy(image: np.ndarray) -> None:
    expected = np.unique(image)
    assert label_set(image).tolist() == expected[expected != 0].tolist()
    values, inverse = unique_inverse(image)
    assert values.tolist() == expected.tolist()
    assert inverse.shape == image.shape
    assert np.array_equal(values[inverse], image)
