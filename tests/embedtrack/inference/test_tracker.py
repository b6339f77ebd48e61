"""The in-memory Tracker and its drivers, end to end with perfect predictions built from ground truth.

A stub predictor returns what a perfect network would (paper §3.2 targets): segmentation offsets to each cell's
centre, seediness 1 inside, constant bandwidths, tracking offsets to the cell's (or its mother's) centre at t-1.
Pushed through the real Tracker, ``run_sequence`` and the CTC writer, the result must score SEG = TRA = DET
≥ 0.99 with py-ctcmetrics: any miswiring of normalise -> predict -> cluster -> border -> link -> lineage
(linking against the wrong frame, thresholds not reaching the stages, a stage skipped) loses points.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from ctc.errors import CTCError
from ctc.evaluate import evaluate
from ctc.io import open_result, open_tracking_gt
from ctc.lineage import Track
from ctc.synth import write_dataset
from ctc.validate import validate_result
from embedtrack.cli import main
from embedtrack.errors import EmbedTrackError
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.io.pipeline import RunOptions, run_sequence
from embedtrack.models.predictions import Predictions
from embedtrack.inference.tracker import Tracker

SCALE = 256.0
W_S = -10.0
KERNEL_PX = 4.0  # the clustering kernel is 0.5 at this distance


def _medoid(rr: np.ndarray, cc: np.ndarray) -> tuple[int, int]:
    """The pixel of a cell closest to its centroid (a centre that lies inside the cell)."""
    k = int(np.argmin((rr - rr.mean()) ** 2 + (cc - cc.mean()) ** 2))
    return int(rr[k]), int(cc[k])


def _centres(mask: np.ndarray) -> dict[int, tuple[int, int]]:
    return {int(v): _medoid(*np.nonzero(mask == v)) for v in np.unique(mask) if v}


class GroundTruthPredictor:
    """Perfect predictions for the frames of one ground-truth sequence, returned in call order."""

    def __init__(self, masks: list[np.ndarray], tracks: list[Track], seediness: float = 1.0) -> None:
        self.masks = masks
        self.parent = {t.label: t.parent for t in tracks}
        self.seediness = seediness
        self.calls = 0

    def reset(self) -> None:
        self.calls = 0

    def __call__(self, frame: np.ndarray) -> Predictions:
        t = self.calls
        self.calls += 1
        mask = self.masks[t]
        assert frame.shape == mask.shape and frame.dtype == np.float32  # a normalised frame
        offsets = np.zeros((2, *mask.shape), np.float32)
        for label, (r, c) in _centres(mask).items():
            rr, cc = np.nonzero(mask == label)
            offsets[0, rr, cc] = (r - rr) / SCALE
            offsets[1, rr, cc] = (c - cc) / SCALE
        bandwidth = math.log((KERNEL_PX / SCALE) ** 2 / math.log(2.0)) / W_S
        return Predictions(offsets, np.full((2, *mask.shape), bandwidth, np.float32),
                           np.where(mask > 0, self.seediness, 0.0).astype(np.float32),
                           self._track_offsets(t) if t else None)

    def _track_offsets(self, t: int) -> np.ndarray:
        """Offsets from every pixel at t to its cell's centre at t-1 (the mother's after a division); cells
        without a predecessor point at background."""
        mask, prev = self.masks[t], self.masks[t - 1]
        before = _centres(prev)
        empty = np.argwhere(prev == 0)[0]
        out = np.zeros((2, *mask.shape), np.float32)
        for label in np.unique(mask[mask > 0]):
            target = before.get(int(label), before.get(self.parent.get(int(label), 0), tuple(empty)))
            rr, cc = np.nonzero(mask == label)
            out[0, rr, cc] = (target[0] - rr) / SCALE
            out[1, rr, cc] = (target[1] - cc) / SCALE
        return out


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic fluorescence sequence (12 frames of 160², divisions and cells at the border) with GT."""
    root = tmp_path_factory.mktemp("golden") / "DS"
    write_dataset(root, "fluo", 12, (160, 160), seed=5, sequences=("01",))
    return root


def _gt(root: Path) -> tuple[list[np.ndarray], list[Track], list[np.ndarray]]:
    seq, tracks = open_tracking_gt(root / "01_GT" / "TRA")
    images = [tifffile.imread(f) for f in sorted((root / "01").glob("t*.tif"))]
    return [seq.read(i) for i in range(len(seq))], tracks, images


def _config(**overrides: object) -> InferenceConfig:
    return InferenceConfig(**{"coord_scale": SCALE, "min_size": 1, **overrides})  # type: ignore[arg-type]


def _stub_tracker(root: Path, **overrides: object) -> Tracker:
    masks, tracks, _ = _gt(root)
    return Tracker(_config(**overrides), predictor=GroundTruthPredictor(masks, tracks))


def _scores(res: Path, root: Path) -> dict[str, float]:
    return evaluate(res, root / "01_GT", ("SEG", "TRA", "DET"))


def test_sequence_has_divisions_and_border_cells(golden: Path) -> None:
    masks, tracks, _ = _gt(golden)
    assert sum(1 for t in tracks if t.parent) >= 2
    border_only = [_in_border(m, 12) for m in masks]
    assert sum(border_only) >= 1  # the field-of-interest test below has something to drop


def _in_border(mask: np.ndarray, border: int) -> int:
    """Number of cells lying entirely within ``border`` px of the edge."""
    inner = set(np.unique(mask[border:-border, border:-border]).tolist())
    return len(set(np.unique(mask[mask > 0]).tolist()) - inner)


def test_perfect_predictions_through_the_tracker_score_one(golden: Path, tmp_path: Path) -> None:
    _, _, images = _gt(golden)
    result = _stub_tracker(golden).track(images)
    assert len(result.labels) == len(images) and result.labels[0].dtype == np.uint16
    res = result.write_ctc(tmp_path / "01_RES")
    scores = _scores(res, golden)
    assert min(scores["SEG"], scores["TRA"], scores["DET"]) >= 0.99, scores


def test_perfect_predictions_through_run_sequence_score_one(golden: Path, tmp_path: Path) -> None:
    seq = tmp_path / "01"
    shutil.copytree(golden / "01", seq)
    report = run_sequence(seq, _stub_tracker(golden), tmp_path / "01_RES", RunOptions(device="cpu"))
    scores = _scores(report.output, golden)
    assert min(scores["SEG"], scores["TRA"], scores["DET"]) >= 0.99, scores
    assert report.divisions >= 2 and report.frames == 12
    assert set(report.seconds) == {"read", "predict", "cluster", "link", "write"}
    assert all(v >= 0 for v in report.seconds.values()) and report.seconds["cluster"] > 0
    settings = json.loads((tmp_path / "01_RES.json").read_text())
    assert settings["inference"] == _config().to_dict()
    assert not any(p.name.endswith(".json") for p in report.output.iterdir())  # the CTC folder stays CTC-exact


def test_iter_track_streams_the_same_frames(golden: Path) -> None:
    _, _, images = _gt(golden)
    tracker = _stub_tracker(golden)
    whole = tracker.track(images)
    stream = tracker.iter_track(iter(images))
    frames = list(stream)
    assert [f.t for f in frames] == list(range(len(images)))
    assert all(np.array_equal(a, f.labels) for a, f in zip(whole.labels, frames))
    assert stream.tracks() == whole.tracks
    assert frames[0].links == {} and all(f.links for f in frames[1:])


def test_seed_threshold_reaches_clustering(golden: Path) -> None:
    masks, tracks, images = _gt(golden)
    tracker = Tracker(_config(), predictor=GroundTruthPredictor(masks, tracks, seediness=0.7))
    assert all(not lab.any() for lab in tracker.with_overrides(seed_threshold=0.8).track(images[:3]).labels)
    assert all(lab.any() for lab in tracker.with_overrides(seed_threshold=0.6).track(images[:3]).labels)


def test_field_of_interest_border_is_applied(golden: Path, tmp_path: Path) -> None:
    _, _, images = _gt(golden)
    plain = _stub_tracker(golden).track(images)
    border = _stub_tracker(golden, fov_border=12).track(images)
    assert sum(_in_border(lab, 12) for lab in plain.labels) >= 1
    assert sum(_in_border(lab, 12) for lab in border.labels) == 0
    seq = tmp_path / "01"
    shutil.copytree(golden / "01", seq)
    report = run_sequence(seq, _stub_tracker(golden), options=RunOptions(inference={"fov_border": 12}))
    res, _ = open_result(report.output)
    assert sum(_in_border(res.read(i), 12) for i in range(len(res))) == 0


def test_given_masks_are_kept_and_linked(golden: Path, tmp_path: Path) -> None:
    masks, _, images = _gt(golden)
    rng = np.random.default_rng(0)
    scrambled = []
    for m in masks:  # identities removed: a random relabelling per frame
        lut = np.zeros(int(m.max()) + 1, np.int32)
        lut[1:] = rng.permutation(np.arange(100, 100 + int(m.max())))
        scrambled.append(lut[m])
    result = _stub_tracker(golden, fov_border=12, min_size=10**6).track(images, masks=scrambled)
    for given, got in zip(masks, result.labels):
        assert _same_partition(given, got)  # kept as given: no border filter, no minimum size
    res = result.write_ctc(tmp_path / "01_RES")
    scores = evaluate(res, golden / "01_GT", ("TRA", "LNK"))
    assert scores["TRA"] >= 0.99 and scores["LNK"] >= 0.99, scores


def test_given_masks_may_be_a_path_read_through_the_opener(golden: Path, tmp_path: Path) -> None:
    masks, _, images = _gt(golden)
    tracker = _stub_tracker(golden)
    expected = tracker.track(images[:4], masks=masks[:4])
    tifffile.imwrite(tmp_path / "masks.tif", np.stack(masks[:4]).astype(np.uint16))
    got = tracker.track(images[:4], masks=tmp_path / "masks.tif")
    np.testing.assert_array_equal(np.stack(got.labels), np.stack(expected.labels))
    (tmp_path / "folder").mkdir()
    for t in range(3):
        tifffile.imwrite(tmp_path / "folder" / f"m{t}.tif", masks[t].astype(np.uint16))
    os.mkfifo(tmp_path / "folder" / "m3.tif")
    from ctc.errors import CTCFormatError

    with pytest.raises(CTCFormatError, match=r"folder/m3.tif: is not a regular file"):
        tracker.track(images[:4], masks=tmp_path / "folder")


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    if not np.array_equal(a > 0, b > 0):
        return False
    pairs = np.unique(np.stack([a[a > 0], b[b > 0]]), axis=1)
    return len(set(pairs[0])) == pairs.shape[1] == len(set(pairs[1]))


def test_bad_masks_give_one_clear_error(golden: Path) -> None:
    masks, _, images = _gt(golden)
    tracker = _stub_tracker(golden)
    with pytest.raises(EmbedTrackError, match="number of masks does not match"):
        tracker.track(images[:4], masks=masks[:3])
    with pytest.raises(EmbedTrackError, match="mask 1: shape"):
        tracker.track(images[:3], masks=[masks[0], masks[1][:-1], masks[2]])
    with pytest.raises(EmbedTrackError, match="mask 0: .*integer labels, got dtype float64"):
        tracker.track(images[:3], masks=[m.astype(float) for m in masks[:3]])


def test_frames_are_checked(golden: Path) -> None:
    _, _, images = _gt(golden)
    with pytest.raises(EmbedTrackError, match="frame 1: expected a 2-D array"):
        _stub_tracker(golden).track([images[0], np.stack([images[1]] * 2)])
    with pytest.raises(EmbedTrackError, match="frame 1: shape"):
        _stub_tracker(golden).track([images[0], images[1][:-2]])


def _never(frame: np.ndarray) -> np.ndarray:
    raise AssertionError(f"a frame of shape {frame.shape} reached the segmenter")


def test_in_memory_frames_are_capped_before_they_are_materialised() -> None:
    """A lazy 30000 x 30000 view (no memory behind it) is refused by its shape, as a file would be, before any
    stage sees it; so is a T×Y×X array-like whose frames are too large, and a 0 x 0 frame."""
    from ctc.errors import CTCFormatError

    tracker = Tracker(InferenceConfig(), segmenter=_never)
    huge = np.broadcast_to(np.uint8(0), (30000, 30000))
    with pytest.raises(CTCFormatError, match=r"frame 0: declares an image of 30000 x 30000 = 900,000,000 pixels"):
        tracker.track([huge])
    with pytest.raises(CTCFormatError, match=r"frames: declares an image of 30000 x 30000"):
        tracker.iter_track(np.broadcast_to(np.uint8(0), (3, 30000, 30000)))
    with pytest.raises(CTCFormatError, match=r"frame 0: frames of 0 x 0 pixels; a frame needs at least 2"):
        tracker.track([np.zeros((0, 0), np.uint8)])


def test_a_lazy_mask_of_another_shape_is_refused_before_it_is_read(golden: Path) -> None:
    masks, _, images = _gt(golden)
    with pytest.raises(EmbedTrackError, match=r"mask 0: shape \(30000, 30000\) differs from the frame's"):
        _stub_tracker(golden).track(images[:1], masks=[np.broadcast_to(np.uint16(1), (30000, 30000))])


def test_to_napari(golden: Path) -> None:
    _, _, images = _gt(golden)
    result = _stub_tracker(golden).track(images[:6])
    labels, tracks, graph = result.to_napari()
    assert labels.shape == (6, 160, 160)
    assert tracks.shape[1] == 4
    n_objects = sum(len(np.unique(f)) - 1 for f in result.labels)
    assert len(tracks) == n_objects
    assert np.all(np.diff(tracks[:, 0]) >= 0)  # sorted by track id, then time
    first = tracks[0]
    ys, xs = np.nonzero(labels[int(first[1])] == int(first[0]))
    assert np.allclose(first[2:], (ys.mean(), xs.mean()))
    assert graph == {t.label: [t.parent] for t in result.tracks if t.parent}


# ------------------------------------------------------------------------------- model folders and the CLI


def test_configured_seed_threshold_of_a_model_folder(tiny_model: Path, synth_dataset: Path,
                                                     tmp_path: Path) -> None:
    # The tiny model's seediness is ≈ 0.95 everywhere: a threshold of 0.99 in config.json finds nothing.
    from embedtrack.models.registry import read_config, write_inference

    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    frames = [tifffile.imread(f) for f in sorted((synth_dataset / "01").glob("t*.tif"))][:2]
    plain = {"cell_size": "off", "denoise": "off"}  # the frames as they are: the threshold alone decides
    assert any(lab.any() for lab in Tracker.from_model(folder, device="cpu").track(frames, **plain).labels)
    write_inference(folder, read_config(folder).inference.replace(seed_threshold=0.99))
    assert read_config(folder).inference.seed_threshold == 0.99
    assert not any(lab.any() for lab in Tracker.from_model(folder, device="cpu").track(frames, **plain).labels)
    tracker = Tracker.from_model(folder, device="cpu", seed_threshold=0.5)
    assert tracker.config.seed_threshold == 0.5


def test_cli_run_options_and_settings(tiny_model: Path, synth_dataset: Path, tmp_path: Path) -> None:
    seq = tmp_path / "01"
    shutil.copytree(synth_dataset / "01", seq)
    args = ["run", str(seq), "--model", str(tiny_model), "--device", "cpu", "--seed-threshold", "0.6",
            "--min-size", "7", "--min-daughter-ratio", "0.5", "--no-background-competes", "--fov-border", "3"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "01_RES.json").read_text())["inference"]
    assert settings["seed_threshold"] == 0.6 and settings["min_size"] == 7
    assert settings["min_daughter_ratio"] == 0.5 and settings["background_competes"] is False
    assert settings["fov_border"] == 3 and settings["coord_scale"] == 64.0
    bad = CliRunner().invoke(main, [*args[:6], "--seed-threshold", "1.5", "--output", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "seed_threshold must be in [0.0, 1.0)" in bad.output
    assert "Traceback" not in bad.output and not (tmp_path / "x").exists()
    again = CliRunner().invoke(main, args[:6])
    assert again.exit_code == 1 and "01_RES" in again.output and "--overwrite" in again.output


def test_cli_run_with_masks(tiny_model: Path, synth_dataset: Path, tmp_path: Path) -> None:
    seq = tmp_path / "01"
    shutil.copytree(synth_dataset / "01", seq)
    gt = synth_dataset / "01_GT" / "TRA"
    result = CliRunner().invoke(main, ["run", str(seq), "--model", str(tiny_model), "--device", "cpu",
                                       "--masks", str(gt)])
    assert result.exit_code == 0, result.output
    res = tmp_path / "01_RES"
    assert [v for v in validate_result(res) if v.severity == "error"] == []
    given, _ = open_tracking_gt(gt)
    got, _ = open_result(res)
    assert all(_same_partition(given.read(i), got.read(i)) for i in range(len(given)))


@pytest.mark.parametrize("problem", ["missing", "shape", "float", "empty"])
def test_cli_run_with_bad_masks(tiny_model: Path, synth_dataset: Path, tmp_path: Path, problem: str) -> None:
    masks = tmp_path / "masks"
    shutil.copytree(synth_dataset / "01_GT" / "TRA", masks)
    files = sorted(masks.glob("man_track*.tif"))
    expected = {"missing": "mask frame numbers", "shape": f"{files[2]}: mask has shape",
                "float": f"{files[1]}: mask must hold integer labels", "empty": "no mask files"}[problem]
    if problem == "missing":
        files[-1].unlink()
    elif problem == "shape":
        tifffile.imwrite(files[2], tifffile.imread(files[2])[:-4])
    elif problem == "float":
        tifffile.imwrite(files[1], tifffile.imread(files[1]).astype(np.float32))
    else:
        for f in files:
            f.unlink()
    out = tmp_path / "res"
    result = CliRunner().invoke(main, ["run", str(synth_dataset / "01"), "--model", str(tiny_model), "--device",
                                       "cpu", "--masks", str(masks), "--output", str(out)])
    assert result.exit_code == 1 and expected in result.output, result.output
    assert "Traceback" not in result.output and not out.exists()


def test_import_tracker_without_torch_or_cli() -> None:
    import subprocess
    import sys

    code = ("import sys; from embedtrack import Tracker, InferenceConfig; "
            "assert 'torch' not in sys.modules and 'click' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True)
    code = ("import sys; from embedtrack.cli import main\ntry: main(['run', '--help'])\nexcept SystemExit: pass\n"
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


class TensorPredictions:
    """Wraps a predictor so that its maps come as torch tensors, as the network's do on a GPU."""

    def __init__(self, inner: GroundTruthPredictor) -> None:
        self.inner = inner

    def reset(self) -> None:
        self.inner.reset()

    def __call__(self, frame: np.ndarray) -> Predictions:
        import torch

        pred = self.inner(frame)
        track = None if pred.track_offsets is None else torch.from_numpy(np.asarray(pred.track_offsets))
        return Predictions.from_maps(torch.from_numpy(pred.seg_maps()), track)


def test_maps_as_tensors_track_like_arrays(golden: Path) -> None:
    """The GPU path (maps left on the device as tensors, clustered and linked there) gives the same result
    as NumPy maps; here with CPU tensors."""
    masks, tracks, images = _gt(golden)
    arrays = _stub_tracker(golden).track(images)
    tensors = Tracker(_config(), predictor=TensorPredictions(GroundTruthPredictor(masks, tracks))).track(images)
    assert all(np.array_equal(a, b) for a, b in zip(arrays.labels, tensors.labels))
    assert tensors.tracks == arrays.tracks and sum(1 for t in tensors.tracks if t.parent) >= 2


def test_network_maps_kept_as_tensors_give_the_same_result(tiny_model: Path, synth_dataset: Path) -> None:
    """A predictor that keeps its maps as tensors (as on CUDA) through the tracker: the same labels and tracks."""
    images = [tifffile.imread(f) for f in sorted((synth_dataset / "01").glob("t*.tif"))]
    results = []
    for on_device in (False, True):
        tracker = Tracker.from_model(tiny_model, "cpu", precision="fp32", seed_threshold=0.3, min_size=5)
        tracker.predictor.maps_on_device = on_device  # type: ignore[union-attr]
        results.append(tracker.track(images))
    assert sum(int(lab.max()) for lab in results[0].labels) > 0
    assert all(np.array_equal(a, b) for a, b in zip(results[0].labels, results[1].labels))
    assert results[0].tracks == results[1].tracks


def test_to_geff_without_the_extra_names_it(golden: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, _, images = _gt(golden)
    result = _stub_tracker(golden).track(images[:2])
    monkeypatch.setitem(sys.modules, "geff", None)  # as if the extra were not installed
    with pytest.raises(CTCError, match=r"x\.geff\.zarr: writing a geff store needs the optional extra 'geff'"):
        result.to_geff(tmp_path / "x.geff.zarr")
    assert not (tmp_path / "x.geff.zarr").exists()
