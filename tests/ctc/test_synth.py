"""Tests of the synthetic CTC dataset generator (ctc/synth)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import ctc.synth as synth
from ctc.errors import CTCError, CTCResultExistsError
from ctc.io import read_tiff, read_track_file
from ctc.lineage import Track
from ctc.synth import SYNTH_PRESETS, generate_sequence, sequence_seed, write_dataset
from ctc.synth.gt import build_ground_truth, clean_frame
from ctc.rules import check_lineage, errors_only
from ctc.validate import validate_result

PRESETS = sorted(SYNTH_PRESETS)
EXPECTED_DTYPE = {"fluo": np.uint16, "fluo-moderate": np.uint16, "phc": np.uint8, "bf": np.uint16}


def _as_result(dataset: Path, seq: str) -> Path:
    """Copy a sequence's GT/TRA into a result folder (maskNNN.tif + res_track.txt)."""
    res = dataset / f"{seq}_RES"
    res.mkdir()
    for f in sorted((dataset / f"{seq}_GT" / "TRA").glob("man_track*.tif")):
        shutil.copy(f, res / f.name.replace("man_track", "mask"))
    shutil.copy(dataset / f"{seq}_GT" / "TRA" / "man_track.txt", res / "res_track.txt")
    return res


def _lineage_errors(masks: list[np.ndarray], tracks: list[Track]) -> list[str]:
    frame_labels = {t: np.unique(m[m > 0]) for t, m in enumerate(masks)}
    return [str(v) for v in errors_only(check_lineage(frame_labels, tracks))]


# ------------------------------------------------------------------------------------------- in memory


@pytest.mark.parametrize("preset", PRESETS)
def test_shapes_dtypes_and_consistent_lineage(preset: str) -> None:
    seq = generate_sequence(preset, frames=5, size=(72, 96), seed=3)
    assert len(seq.images) == len(seq.masks) == 5
    for image, mask in zip(seq.images, seq.masks):
        assert image.shape == mask.shape == (72, 96)
        assert image.dtype == EXPECTED_DTYPE[preset]
        assert mask.dtype == np.uint16
        assert mask.any(), "every frame must hold at least one cell"
        assert image.std() > 0
    assert _lineage_errors(seq.masks, seq.tracks) == []
    assert 1 <= len(seq.seg_frames) < 5 and all(0 <= t < 5 for t in seq.seg_frames)
    assert seq.params.preset == SYNTH_PRESETS[preset].name  # the modality the renderer draws


def test_moderate_fluo_is_fluo_narrowed() -> None:
    """``fluo-moderate`` (the demo's data) draws inside ``fluo``'s ranges, and narrower for size and noise."""
    from dataclasses import fields

    wide, narrow = SYNTH_PRESETS["fluo"], SYNTH_PRESETS["fluo-moderate"]
    assert narrow.name == "fluo"
    for f in fields(wide):
        if f.name not in ("name", "description", "dtype"):
            (lo, hi), (nlo, nhi) = getattr(wide, f.name), getattr(narrow, f.name)
            assert lo <= nlo <= nhi <= hi, f.name
    assert narrow.radius[0] > wide.radius[0] and narrow.snr[0] > wide.snr[0] and narrow.blur[1] < wide.blur[1]
    seq = generate_sequence("fluo-moderate", frames=3, size=(96, 96), seed=4)
    assert narrow.radius[0] <= seq.params.radius <= narrow.radius[1]


@pytest.mark.parametrize("preset", PRESETS)
def test_deterministic_for_a_seed(preset: str) -> None:
    a = generate_sequence(preset, frames=4, size=(64, 64), seed=11)
    b = generate_sequence(preset, frames=4, size=(64, 64), seed=11)
    c = generate_sequence(preset, frames=4, size=(64, 64), seed=12)
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images))
    assert all(np.array_equal(x, y) for x, y in zip(a.masks, b.masks))
    assert a.tracks == b.tracks and a.seg_frames == b.seg_frames and a.params == b.params
    assert not np.array_equal(a.images[0], c.images[0])


def test_cells_are_not_uniform_blobs() -> None:
    """Nuclei carry texture and differ in brightness: the signal inside masks is not constant."""
    seq = generate_sequence("fluo", frames=2, size=(128, 128), seed=5)
    image, mask = seq.images[0].astype(float), seq.masks[0]
    labels = np.unique(mask[mask > 0])
    means = np.array([image[mask == lab].mean() for lab in labels])
    assert image[mask > 0].mean() > image[mask == 0].mean()
    assert len(labels) >= 2 and means.std() > 0
    assert all(image[mask == lab].std() > 0 for lab in labels)


def test_divisions_present_and_well_formed() -> None:
    divisions = 0
    for seed in range(3):
        seq = generate_sequence("fluo", frames=10, size=(160, 160), seed=seed)
        by_label = {t.label: t for t in seq.tracks}
        for track in seq.tracks:
            if track.parent:
                divisions += 1
                assert by_label[track.parent].end == track.begin - 1
        children = [t.parent for t in seq.tracks if t.parent]
        assert all(children.count(p) <= 2 for p in children)
    assert divisions > 0


def test_cells_enter_and_leave_fast_movers() -> None:
    entering = leaving = 0
    for seed in range(3):
        seq = generate_sequence("bf", frames=12, size=(96, 96), seed=seed)
        entering += sum(1 for t in seq.tracks if t.begin > 0 and t.parent == 0)
        leaving += sum(1 for t in seq.tracks if t.end < 11 and t.label not in {u.parent for u in seq.tracks})
    assert entering > 0 and leaving > 0


@pytest.mark.parametrize(("preset", "frames", "size"), [("nope", 3, (64, 64)), ("fluo", 0, (64, 64)),
                                                        ("fluo", 3, (8, 64))])
def test_bad_arguments(preset: str, frames: int, size: tuple[int, int]) -> None:
    with pytest.raises(CTCError, match="preset|frame"):
        generate_sequence(preset, frames, size, 0)


def test_sequence_seed() -> None:
    assert sequence_seed(7, 0) == 7
    assert sequence_seed(7, 1) != 7 and sequence_seed(7, 1) == sequence_seed(7, 1)
    assert sequence_seed(7, 1) != sequence_seed(8, 1)


# ---------------------------------------------------------------------------------- ground-truth rules


def test_clean_frame_keeps_largest_piece_and_drops_tiny_cells() -> None:
    labels = np.zeros((20, 20), np.int32)
    labels[0:5, 0:5] = 3      # 25 px, kept
    labels[10:12, 10:12] = 3  # 4 px fragment of 3, dropped
    labels[15:18, 15:18] = 4  # 9 px cell, below 10 px, dropped
    labels[0:4, 10:14] = 5    # 16 px, kept
    out = clean_frame(labels, min_area=10)
    assert (out == 3).sum() == 25 and (out[10:12, 10:12] == 0).all()
    assert not (out == 4).any() and (out == 5).sum() == 16


def _frame(*cells: tuple[int, int, int]) -> np.ndarray:
    labels = np.zeros((30, 30), np.int32)
    for sid, row, col in cells:
        labels[row:row + 4, col:col + 4] = sid
    return labels


def test_ground_truth_splits_gaps_and_links_daughters() -> None:
    raw = [
        _frame((1, 0, 0), (2, 10, 10), (5, 20, 20)),
        _frame((1, 0, 2), (2, 10, 12)),
        _frame((1, 0, 4), (3, 10, 14), (4, 14, 20)),      # 2 divided into 3, 4; 5 vanished
        _frame((1, 0, 6), (3, 10, 16), (4, 14, 22), (5, 20, 20)),  # 5 is back: a new track
        _frame((1, 0, 8), (4, 14, 24), (6, 24, 0)),         # 6: daughter of 5 seen only one frame late
    ]
    parents = {3: 2, 4: 2, 6: 5}
    births = {3: 2, 4: 2, 6: 3}
    masks, tracks = build_ground_truth(raw, parents, births, min_area=10)
    assert _lineage_errors(masks, tracks) == []
    spans = {(t.begin, t.end): t for t in tracks}
    mother = spans[(0, 1)]  # track of cell 2 (cell 5's first piece is 0..0)
    assert {t.parent for t in tracks if t.begin == 2} == {mother.label}
    five = [t for t in tracks if (t.begin, t.end) in ((0, 0), (3, 3))]
    assert len(five) == 2 and all(t.parent == 0 for t in five)
    six = [t for t in tracks if t.begin == 4]
    assert len(six) == 1 and six[0].parent == 0
    assert sorted(t.label for t in tracks) == list(range(1, len(tracks) + 1))
    assert all(m.dtype == np.uint16 for m in masks)


# ----------------------------------------------------------------------------------------- on disk


def test_write_dataset_layout(tmp_path: Path) -> None:
    out = write_dataset(tmp_path / "DS", "phc", frames=6, size=(64, 80), seed=2)
    for seq in ("01", "02"):
        raw = sorted(p.name for p in (out / seq).glob("*.tif"))
        assert raw == [f"t{t:03d}.tif" for t in range(6)]
        tra = out / f"{seq}_GT" / "TRA"
        assert len(list(tra.glob("man_track*.tif"))) == 6
        assert len(list((out / f"{seq}_ST" / "SEG").glob("man_seg*.tif"))) == 6
        seg = sorted((out / f"{seq}_GT" / "SEG").glob("man_seg*.tif"))
        assert 1 <= len(seg) < 6
        for f in seg:  # sparse GT/SEG frames equal the tracking masks of the same frame
            assert np.array_equal(read_tiff(f), read_tiff(tra / f.name.replace("man_seg", "man_track")))
        assert read_tiff(out / seq / "t000.tif").dtype == np.uint8
        assert read_tiff(tra / "man_track000.tif").dtype == np.uint16
        assert read_track_file(tra / "man_track.txt")
    assert not np.array_equal(read_tiff(out / "01" / "t000.tif"), read_tiff(out / "02" / "t000.tif"))
    first = generate_sequence("phc", frames=6, size=(64, 80), seed=2)  # 01 uses the seed itself
    assert np.array_equal(read_tiff(out / "01" / "t003.tif"), first.images[3])
    record = json.loads((out / "synth.json").read_text())
    assert record["preset"] == "phc" and set(record["sequences"]) == {"01", "02"}
    assert [p.name for p in tmp_path.iterdir()] == ["DS"], "no temporary folder may be left"


def test_write_dataset_refuses_to_clobber(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    write_dataset(tmp_path / "empty", "fluo", frames=2, size=(48, 48), seed=0, sequences=("01",))
    target = write_dataset(tmp_path / "DS", "fluo", frames=2, size=(48, 48), seed=0, sequences=("01",))
    before = read_tiff(target / "01" / "t000.tif")
    with pytest.raises(CTCResultExistsError, match="exists; use --overwrite"):
        write_dataset(target, "fluo", frames=2, size=(48, 48), seed=1, sequences=("01",))
    assert np.array_equal(read_tiff(target / "01" / "t000.tif"), before)
    write_dataset(target, "fluo", frames=2, size=(48, 48), seed=1, sequences=("01",), overwrite=True)
    assert not np.array_equal(read_tiff(target / "01" / "t000.tif"), before)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["DS", "empty"]


def test_write_dataset_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = synth.generate_sequence
    calls: list[int] = []

    def failing(preset: str, frames: int, size: tuple[int, int], seed: int,
                appearance: tuple[str, ...] | None = None) -> synth.SynthSequence:
        calls.append(seed)
        if len(calls) == 2:
            raise CTCError("planted failure")
        return real(preset, frames, size, seed, appearance)

    monkeypatch.setattr(synth, "generate_sequence", failing)
    with pytest.raises(CTCError, match="planted failure"):
        write_dataset(tmp_path / "DS", "fluo", frames=2, size=(48, 48), seed=0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("preset", PRESETS)
def test_ground_truth_is_valid_and_scores_one(tmp_path: Path, preset: str) -> None:
    from ctc_metrics.scripts.evaluate import evaluate_sequence
    from ctc_metrics.scripts.validate import validate_sequence

    out = write_dataset(tmp_path / "DS", preset, frames=8, size=(96, 96), seed=4)
    for seq in ("01", "02"):
        res = _as_result(out, seq)
        assert errors_only(validate_result(res)) == []
        with contextlib.redirect_stdout(io.StringIO()):
            assert validate_sequence(str(res), threads=1)["Valid"] == 1
            scores = evaluate_sequence(str(res), str(out / f"{seq}_GT"), ["SEG", "TRA", "DET"], threads=1)
        assert scores["SEG"] == pytest.approx(1.0)
        assert scores["TRA"] == pytest.approx(1.0)
        assert scores["DET"] == pytest.approx(1.0)
