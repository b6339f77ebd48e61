"""Per-frame normalisation: one home, any pixel type, non-finite pixels never empty a frame."""

from __future__ import annotations

import importlib
import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from embedtrack.errors import EmbedTrackError
from embedtrack.inference.preprocess import normalise


def test_normalise_has_one_home() -> None:
    assert not hasattr(importlib.import_module("embedtrack.training.data"), "normalise")


@settings(max_examples=80, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=2, max_dims=2, min_side=2, max_side=16),
                  elements=st.floats(-1e6, 1e6, width=32)),
       st.lists(st.tuples(st.integers(0, 15), st.integers(0, 15), st.sampled_from([np.nan, np.inf, -np.inf])),
                min_size=1, max_size=5))
def test_non_finite_pixels_are_ignored(frame: np.ndarray, bad: list[tuple[int, int, float]]) -> None:
    broken = frame.copy()
    spots = {(r % frame.shape[0], c % frame.shape[1]) for r, c, _ in bad}
    for (r, c), (_, _, value) in zip(spots, bad):
        broken[r, c] = value
    out = normalise(broken, source="seq")
    assert np.isfinite(out).all()
    keep = np.ones(frame.shape, bool)
    for spot in spots:
        keep[spot] = False
    if keep.any():
        lo, hi = np.percentile(frame[keep], [1, 99])
        expected = (frame[keep] - lo) / max(float(hi - lo), 1e-6)
        np.testing.assert_allclose(out[keep], expected, rtol=1e-4, atol=1e-4)
        assert (out[~keep] == 0).all()


def test_one_nan_pixel_keeps_the_frame_and_is_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    frame = np.arange(64, dtype=np.float32).reshape(8, 8)
    frame[3, 3] = np.nan
    caplog.set_level(logging.WARNING)
    for _ in range(3):
        out = normalise(frame, source="once-seq")
    assert np.isfinite(out).all() and out.max() > 0.9
    assert caplog.text.count("once-seq: NaN/inf pixels") == 1


def test_all_nan_frame_is_zero() -> None:
    assert (normalise(np.full((4, 4), np.nan, np.float32), source="nan-seq") == 0).all()


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.uint16, np.int32, np.float64])
def test_any_pixel_type(dtype: type) -> None:
    frame = (np.arange(100).reshape(10, 10) % 7 > 3).astype(dtype)
    out = normalise(frame)
    assert out.dtype == np.float32 and np.isfinite(out).all() and out.max() > out.min()


def test_uint8_uint16_and_a_tenfold_dimmer_sequence_normalise_alike() -> None:
    """Per-dataset brightness differs (GOWT1 is uint8, SIM+ and MSC uint16, sequences of one dataset differ by
    10x): the per-frame percentile scaling gives one intensity scale to all of them."""
    rng = np.random.default_rng(0)
    bright = np.clip(rng.gamma(2.0, 6000.0, (64, 64)), 0, 65535).astype(np.uint16)
    dim = (bright // 10).astype(np.uint16)
    as_uint8 = (bright.astype(np.float64) / bright.max() * 255).round().astype(np.uint8)
    reference = normalise(bright)
    assert np.abs(normalise(dim) - reference).max() < 0.01
    assert np.abs(normalise(as_uint8) - reference).max() < 0.03


@pytest.mark.parametrize("scale", [1e37, 1e300])
def test_a_float64_frame_near_the_float32_limit_normalises_like_the_frame_itself(scale: float) -> None:
    frame = np.random.default_rng(1).gamma(2.0, 50.0, (32, 32))
    out = normalise(frame * scale, source="huge-seq")
    assert out.dtype == np.float32 and np.isfinite(out).all()
    np.testing.assert_allclose(out, normalise(frame), rtol=1e-5, atol=1e-6)


def test_far_outliers_of_a_float64_frame_stay_finite() -> None:
    frame = np.arange(10000, dtype=np.float64).reshape(100, 100)
    frame[0, 0] = 1e300
    out = normalise(frame)
    assert np.isfinite(out).all() and out[0, 0] == np.finfo(np.float32).max and out[99, 99] > 0.9


def test_complex_frames_are_refused_not_cast() -> None:
    with pytest.raises(EmbedTrackError, match=r"seq/01: pixels are complex numbers \(complex128\)"):
        normalise(np.ones((4, 4), complex), source="seq/01")
