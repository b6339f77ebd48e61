"""ctc.conditions: body SNR and cell diameter measured on a constructed frame with known values."""

import numpy as np
import pytest

from ctc.conditions import background_stats, body_snr, cell_diameters, measure


def _frame(snr: float, radius: int = 10, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:128, :128]
    labels = np.zeros((128, 128), np.uint16)
    for label, (cy, cx) in enumerate([(32, 32), (32, 96), (96, 64)], start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius ** 2] = label
    frame = 100.0 + rng.normal(0.0, 5.0, labels.shape) + 5.0 * snr * (labels > 0)
    return frame, labels


def test_body_snr_is_the_contrast_in_noise_units():
    frame, labels = _frame(snr=3.0)
    assert body_snr(frame, labels) == pytest.approx([3.0] * 3, abs=0.25)
    median, std = background_stats(frame, labels)
    assert median == pytest.approx(100.0, abs=0.3) and std == pytest.approx(5.0, rel=0.05)


def test_diameter_of_a_disc():
    _, labels = _frame(snr=3.0, radius=10)
    assert cell_diameters(labels) == pytest.approx([20.0] * 3, rel=0.05)


def test_measure_summarises_frames_and_skips_empty_ones():
    pairs = [_frame(snr=2.0, seed=s) for s in range(3)] + [(np.zeros((8, 8)), np.zeros((8, 8), np.uint16))]
    result = measure(pairs)
    assert result is not None and result.cells == 9
    assert result.snr_median == pytest.approx(2.0, abs=0.25)
    assert result.diameter_median == pytest.approx(20.0, rel=0.05)
    assert measure([(np.zeros((8, 8)), np.zeros((8, 8), np.uint16))]) is None


def test_a_quantised_background_falls_back_to_the_standard_deviation():
    frame, labels = _frame(snr=3.0)
    flat = np.where(labels > 0, frame, 100.0)
    flat[0, :10] = 110.0  # a few background pixels differ: MAD is 0, the plain std is not
    assert background_stats(flat, labels)[1] > 0.0
