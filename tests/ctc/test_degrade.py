"""ctc.degrade: noise to a target body SNR and rescaled ground truth, on constructed frames and a synthetic dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ctc.conditions import measure
from ctc.degrade import (add_noise, ground_truth_problems, noise_for_snr, rescale_frame, rescale_labels,
                         scaled_shape, unit_noise, write_condition)
from ctc.io import TRACK_FILE_GT, read_tiff, write_tiff
from ctc.synth import write_dataset


def _cells(snr: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Four discs of contrast ``snr`` (noise 5) and a one-pixel marker, 128 x 128."""
    yy, xx = np.mgrid[:128, :128]
    labels = np.zeros((128, 128), np.uint16)
    for label, (cy, cx) in enumerate([(32, 32), (32, 96), (96, 64), (90, 20)], start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= 100] = label
    labels[5, 5] = 9
    frame = 100.0 + np.random.default_rng(seed).normal(0.0, 5.0, labels.shape) + 5.0 * snr * (labels > 0)
    return frame, labels


@pytest.mark.parametrize("target", [4.0, 2.0, 1.0])
def test_noise_reaches_the_target_snr(target: float) -> None:
    frames, labels = zip(*(_cells(8.0, seed) for seed in range(2)))
    sigma, reached = noise_for_snr(frames, labels, target, seed=3, rtol=0.02)
    assert reached == pytest.approx(target, rel=0.02)
    noisy = [add_noise(f, sigma, unit_noise(f.shape, 3, k)) for k, f in enumerate(frames)]
    assert measure(zip(noisy, labels)).snr_median == pytest.approx(target, rel=0.02)
    assert noisy[0].dtype == np.float32
    # the cells keep their mean brightness: only the background spread grows
    assert noisy[0][labels[0] == 1].mean() == pytest.approx(frames[0][labels[0] == 1].mean(), rel=0.02)


def test_noise_is_skipped_below_the_target_and_refused_without_cells() -> None:
    frame, labels = _cells(1.5)
    assert noise_for_snr([frame], [labels], 2.0) is None
    with pytest.raises(ValueError, match="no labelled cell"):
        noise_for_snr([frame], [np.zeros_like(labels)], 2.0)
    with pytest.raises(ValueError, match="positive"):
        noise_for_snr([frame], [labels], 0.0)


def test_noise_of_a_frame_follows_its_position() -> None:
    frames, labels = zip(*(_cells(8.0, seed) for seed in range(2)))
    a = noise_for_snr(frames, labels, 2.0, seed=1, indices=[0, 1])
    b = noise_for_snr(frames[::-1], labels[::-1], 2.0, seed=1, indices=[1, 0])
    assert a == b


@pytest.mark.parametrize("factor", [0.3, 0.6, 1.5, 2.0])
def test_rescaled_labels_keep_every_label(factor: float) -> None:
    _, labels = _cells(4.0)
    shape = scaled_shape(labels.shape, factor)
    out = rescale_labels(labels, shape)
    assert out.shape == shape == (round(128 * factor),) * 2 and out.dtype == labels.dtype
    assert set(np.unique(out)) == set(np.unique(labels))
    area = (out == 1).sum() / (labels == 1).sum()
    assert area == pytest.approx(factor ** 2, rel=0.1)


def test_a_lost_marker_comes_back_inside_its_place_without_erasing_another() -> None:
    labels = np.zeros((10, 10), np.uint16)
    labels[4, 4], labels[4, 5], labels[5, 4] = 1, 2, 3  # three one-pixel markers side by side
    out = rescale_labels(labels, (3, 3))
    assert set(np.unique(out)) == {0, 1, 2, 3}


def test_rescaled_frame_is_linear_on_pixel_centres() -> None:
    ramp = np.tile(np.arange(8, dtype=np.float32), (4, 1))
    up = rescale_frame(ramp, (8, 16))
    assert up.shape == (8, 16) and up.dtype == np.float32
    assert up[0, 2:-2] == pytest.approx(np.arange(2, 14) / 2 - 0.25)
    assert np.all(np.diff(up[0]) >= 0)


def test_rescaled_dataset_is_valid_ground_truth_with_every_track(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "DS", "fluo", frames=4, size=(96, 96), seed=1, sequences=("01",))
    shape = scaled_shape((96, 96), 0.6)
    out = write_condition(data, "01", tmp_path / "x0.6", lambda k, f: rescale_frame(f, shape),
                          lambda m: rescale_labels(m, shape))
    assert read_tiff(out / "01" / "t000.tif").shape == shape
    assert (out / "01_GT" / "TRA" / TRACK_FILE_GT).read_bytes() == (data / "01_GT" / "TRA" / TRACK_FILE_GT).read_bytes()
    assert ground_truth_problems(data / "01_GT", out / "01_GT", shape) == []
    # a label lost on the way is found
    mask = out / "01_GT" / "TRA" / "man_track001.tif"
    labels = read_tiff(mask)
    labels[labels == labels.max()] = 0
    write_tiff(mask, labels)
    problems = ground_truth_problems(data / "01_GT", out / "01_GT", shape)
    assert any("man_track001.tif" in p for p in problems)


def test_write_condition_refuses_an_existing_folder(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "DS", "fluo", frames=2, size=(48, 48), seed=1, sequences=("01",))
    (tmp_path / "taken").mkdir()
    with pytest.raises(Exception, match="exists"):
        write_condition(data, "01", tmp_path / "taken", lambda k, f: f)
    assert not any((tmp_path / "taken").iterdir())
