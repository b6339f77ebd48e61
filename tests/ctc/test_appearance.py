"""Tests of the appearance families of the synthetic generator (ctc.synth.appearance)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ctc.errors import CTCError
from ctc.synth import generate_sequence, write_dataset
from ctc.synth.appearance import PATTERNS, SHAPES, families, pattern, select
from ctc.rules import errors_only
from ctc.validate import validate_result
from tests.ctc.test_synth import _as_result

CASES = [(preset, name) for preset in PATTERNS for name in families(preset)]


@pytest.mark.parametrize(("preset", "name"), CASES)
def test_each_family_renders_and_its_ground_truth_validates(tmp_path: Path, preset: str, name: str) -> None:
    out = write_dataset(tmp_path / "DS", preset, frames=4, size=(80, 80), seed=2, sequences=("01",),
                        appearance=(name,))
    assert errors_only(validate_result(_as_result(out, "01"))) == []
    seq = generate_sequence(preset, frames=2, size=(80, 80), seed=2, appearance=(name,))
    kind = seq.params.patterns if name in PATTERNS[preset] else seq.params.shapes
    assert kind == (name,)
    assert seq.masks[0].any() and seq.images[0].std() > 0


def test_a_held_out_family_is_never_drawn() -> None:
    seq = generate_sequence("fluo", frames=2, size=(96, 96), seed=1,
                            appearance=select("fluo", None, ("nucleoli", "kidney")))
    assert "nucleoli" not in seq.params.patterns and "kidney" not in seq.params.shapes
    assert len(seq.params.patterns) == len(PATTERNS["fluo"]) - 1 and len(seq.params.shapes) == len(SHAPES) - 1


def test_families_change_the_interior_not_the_geometry() -> None:
    """The same seed with another pattern family: identical masks, different pixels inside the cells."""
    a = generate_sequence("fluo", frames=2, size=(96, 96), seed=7, appearance=("smooth", "round"))
    b = generate_sequence("fluo", frames=2, size=(96, 96), seed=7, appearance=("nucleoli", "round"))
    assert np.array_equal(a.masks[1], b.masks[1])
    inside = a.masks[1] > 0
    assert not np.array_equal(a.images[1][inside], b.images[1][inside])


def test_unknown_or_exhausted_families_are_refused() -> None:
    with pytest.raises(CTCError, match="unknown appearance family 'glow'"):
        select("fluo", ("glow",))
    with pytest.raises(CTCError, match="nothing left"):
        select("bf", None, SHAPES)
    with pytest.raises(CTCError, match="unknown appearance family 'nucleoli' for preset bf"):
        select("bf", ("nucleoli",))


def test_cells_span_a_tenfold_brightness_range() -> None:
    seq = generate_sequence("fluo", frames=1, size=(256, 256), seed=3, appearance=("smooth",))
    image, mask = seq.images[0].astype(float), seq.masks[0]
    background = np.median(image[mask == 0])
    signal = np.array([image[mask == lab].mean() - background for lab in np.unique(mask[mask > 0])])
    assert signal.max() / max(signal.min(), 1e-6) >= 10.0


@pytest.mark.parametrize("name", PATTERNS["fluo"] + ("lens", "shadeoff"))
def test_patterns_are_bounded_below(name: str) -> None:
    rng = np.random.default_rng(0)
    grid = np.linspace(-1.2, 1.2, 33, dtype=np.float32)
    un, vn = np.meshgrid(grid, grid)
    d = np.hypot(un, vn)
    out = pattern(name, un, vn, d, rng.normal(size=un.shape).astype(np.float32),
                  rng.normal(size=un.shape).astype(np.float32), rng.random(8))
    assert out.shape == un.shape and out.min() >= -0.9 and np.isfinite(out).all()
