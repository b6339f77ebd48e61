"""`run` with reading ahead and writing behind: the same bytes as without, frames in order and normalised, masks
written in order in the writing thread, one clear error (nothing written, no thread left) when a frame is
corrupt or a write fails, and stage timings that fit the wall-clock time."""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

import ctc.io
from ctc.errors import CTCFormatError
from embedtrack.cli import main
from embedtrack.io.pipeline import STAGES, RunOptions, RunReport, run_sequence
from embedtrack.models.predictions import Predictions
from embedtrack.inference.preprocess import normalise
from embedtrack.inference.tracker import Tracker
from tests.embedtrack.inference.test_background import worker_threads
from tests.embedtrack.inference.test_tracker import GroundTruthPredictor, _config, _gt

N_FRAMES = 6  # the synth_dataset fixture


class RecordingPredictor(GroundTruthPredictor):
    """Perfect predictions that keep a copy of every frame handed to the network."""

    def __init__(self, root: Path, fail_at: int | None = None) -> None:
        masks, tracks, _ = _gt(root)
        super().__init__(masks, tracks)
        self.seen: list[np.ndarray] = []
        self.fail_at = fail_at

    def __call__(self, frame: np.ndarray) -> Predictions:
        if len(self.seen) == self.fail_at:
            raise KeyboardInterrupt
        self.seen.append(frame.copy())
        return super().__call__(frame)


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _leftovers(folder: Path) -> list[str]:
    """A result folder or a temporary folder of one."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith("_RES")]


@pytest.fixture
def reports(synth_dataset: Path, tiny_model: Path, tmp_path: Path) -> dict[bool, RunReport]:
    """The same sequence run with overlap on and off by the (untrained) network: its output depends on the
    pixels of every frame, so a frame mixed up or not normalised changes the result. (Function-scoped: the
    runs need the one-torch-thread setting of the autouse fixture.)"""
    return {on: run_sequence(synth_dataset / "01", tiny_model, tmp_path / f"{on}_RES",
                             RunOptions(device="cpu", overlap=on)) for on in (True, False)}


def test_overlap_on_and_off_write_the_same_bytes(reports: dict[bool, RunReport]) -> None:
    on, off = _files(reports[True].output), _files(reports[False].output)
    assert len(on) == N_FRAMES + 1 and on == off
    assert reports[True].tracks == reports[False].tracks > 0


def test_given_masks_are_linked_the_same_with_and_without_overlap(synth_dataset: Path, tmp_path: Path) -> None:
    tracker = Tracker(_config(), predictor=GroundTruthPredictor(*_gt(synth_dataset)[:2]))
    masks = synth_dataset / "01_GT" / "TRA"
    out = {on: run_sequence(synth_dataset / "01", tracker, tmp_path / f"{on}_RES",
                            RunOptions(overlap=on, masks=masks)).output for on in (True, False)}
    assert _files(out[True]) == _files(out[False])


def test_iter_track_gives_the_same_with_and_without_prefetch(synth_dataset: Path) -> None:
    _, _, images = _gt(synth_dataset)
    tracker = Tracker(_config(), predictor=GroundTruthPredictor(*_gt(synth_dataset)[:2]))
    streams = {on: tracker.iter_track(iter(images), prefetch=on) for on in (True, False)}
    results = {on: [r.labels for r in stream] for on, stream in streams.items()}
    assert all(np.array_equal(a, b) for a, b in zip(results[True], results[False], strict=True))
    assert streams[True].tracks() == streams[False].tracks()
    assert worker_threads() == []


def test_frames_are_read_ahead_normalised_in_order_and_masks_written_behind_in_order(
        synth_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    predictor = RecordingPredictor(synth_dataset)
    _, _, images = _gt(synth_dataset)
    reads: list[tuple[int, str]] = []
    writes: list[tuple[int | str, str]] = []
    finishing = threading.Event()
    read, write_mask, finish = ctc.io.Sequence.read, ctc.io.ResultWriter.write_mask, ctc.io.ResultWriter.finish

    def recording_read(self: ctc.io.Sequence, i: int) -> np.ndarray:
        reads.append((i, threading.current_thread().name))
        return read(self, i)

    def recording_write(self: ctc.io.ResultWriter, index: int, labels: np.ndarray) -> None:
        if index == N_FRAMES - 1:
            finishing.wait(timeout=0.2)  # a slow last write: finish() must wait for it
        writes.append((index, threading.current_thread().name))
        write_mask(self, index, labels)

    def recording_finish(self: ctc.io.ResultWriter, *args: Any, **kwargs: Any) -> Path:
        finishing.set()
        writes.append(("finish", threading.current_thread().name))
        return finish(self, *args, **kwargs)

    monkeypatch.setattr(ctc.io.Sequence, "read", recording_read)
    monkeypatch.setattr(ctc.io.ResultWriter, "write_mask", recording_write)
    monkeypatch.setattr(ctc.io.ResultWriter, "finish", recording_finish)
    config = _config()
    run_sequence(synth_dataset / "01", Tracker(config, predictor=predictor), tmp_path / "01_RES",
                 RunOptions(overlap=True))
    assert len(predictor.seen) == len(images)
    for seen, image in zip(predictor.seen, images):
        assert np.array_equal(seen, normalise(image, config.norm_low, config.norm_high))
    assert reads == [(i, "embedtrack-read") for i in range(N_FRAMES)]
    assert writes == [(i, "embedtrack-write") for i in range(N_FRAMES)] + [("finish", "MainThread")]


def test_stage_timings_fit_the_wall_clock(reports: dict[bool, RunReport]) -> None:
    for on, report in reports.items():
        sec, wall = report.seconds, report.wall_seconds
        assert set(sec) == set(STAGES) and all(v > 0 for v in sec.values())
        # each thread's busy time lies within the run; with one thread the stages add up to at most the wall time
        for group in (("read",), ("predict", "cluster", "link"), ("write",)) if on else (STAGES,):
            assert sum(sec[s] for s in group) <= wall
        assert report.total_seconds >= 0.5 * wall  # little time outside the stages
        summary = report.summary()
        assert f"{wall:.1f}s wall" in summary and f"{N_FRAMES / wall:.2f} frames/s" in summary
        assert ("read and write overlapped with compute" in summary) == on


def _corrupt(frame: Path) -> None:
    """Rewrite a frame compressed and zero its image data: the header stays valid, decoding fails."""
    tifffile.imwrite(frame, tifffile.imread(frame), compression="zlib")
    with tifffile.TiffFile(frame) as tif:
        offset, count = tif.pages[0].dataoffsets[0], tif.pages[0].databytecounts[0]  # type: ignore[union-attr]
    data = bytearray(frame.read_bytes())
    data[offset + 8:offset + count] = bytes(count - 8)
    frame.write_bytes(bytes(data))


@pytest.fixture
def corrupt_sequence(synth_dataset: Path, tmp_path: Path) -> Path:
    seq = tmp_path / "01"
    shutil.copytree(synth_dataset / "01", seq)
    _corrupt(seq / "t003.tif")
    return seq


@pytest.mark.parametrize("on", [True, False])
def test_corrupt_frame_midway_is_one_error_naming_it(corrupt_sequence: Path, synth_dataset: Path, on: bool) -> None:
    predictor = RecordingPredictor(synth_dataset)
    with pytest.raises(CTCFormatError) as raised:
        run_sequence(corrupt_sequence, Tracker(_config(), predictor=predictor), options=RunOptions(overlap=on))
    assert str(raised.value).startswith(f"{corrupt_sequence / 't003.tif'}: not a readable TIFF file")
    assert len(predictor.seen) == 3  # the frames before it were tracked
    assert _leftovers(corrupt_sequence.parent) == [] and worker_threads() == []


def test_corrupt_frame_is_one_line_from_the_cli(corrupt_sequence: Path, tiny_model: Path) -> None:
    result = CliRunner().invoke(main, ["run", str(corrupt_sequence), "--model", str(tiny_model), "--device", "cpu"])
    bad = str(corrupt_sequence / "t003.tif")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.count(bad) == 1 and result.output.strip().splitlines()[-1].startswith(f"Error: {bad}: ")
    assert _leftovers(corrupt_sequence.parent) == [] and worker_threads() == []


@pytest.mark.parametrize("on", [True, False])
def test_failing_write_is_raised_once_and_leaves_nothing(synth_dataset: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch, on: bool) -> None:
    raised: list[OSError] = []
    imwrite = tifffile.imwrite

    def full_disk_at_mask002(path: Path, *args: Any, **kwargs: Any) -> None:
        if Path(path).name == "mask002.tif":
            raised.append(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)))
            raise raised[-1]
        imwrite(path, *args, **kwargs)

    monkeypatch.setattr(tifffile, "imwrite", full_disk_at_mask002)
    tracker = Tracker(_config(), predictor=GroundTruthPredictor(*_gt(synth_dataset)[:2]))
    with pytest.raises(OSError) as caught:
        run_sequence(synth_dataset / "01", tracker, tmp_path / "01_RES", RunOptions(overlap=on))
    assert len(raised) == 1 and caught.value is raised[0]
    assert list(tmp_path.iterdir()) == [] and worker_threads() == []


def test_interrupt_during_prediction_leaves_nothing(synth_dataset: Path, tmp_path: Path) -> None:
    tracker = Tracker(_config(), predictor=RecordingPredictor(synth_dataset, fail_at=3))
    with pytest.raises(KeyboardInterrupt):
        run_sequence(synth_dataset / "01", tracker, tmp_path / "01_RES")
    assert list(tmp_path.iterdir()) == [] and worker_threads() == []


def test_overlap_is_off_on_a_cpu_unless_asked(synth_dataset: Path, tiny_model: Path, tmp_path: Path) -> None:
    """`run` overlaps by default only on CUDA (on a CPU the threads compete with the network); --overlap turns
    it on, and the settings file records what was used."""
    seq = tmp_path / "01"
    shutil.copytree(synth_dataset / "01", seq)
    for flags, expected in (([], False), (["--overlap"], True), (["--no-overlap"], False)):
        result = CliRunner().invoke(main, ["run", str(seq), "--model", str(tiny_model), "--device", "cpu",
                                           "--overwrite", *flags])
        assert result.exit_code == 0, result.output
        assert json.loads((tmp_path / "01_RES.json").read_text())["overlap"] is expected
        assert ("overlapped with compute" in result.output) is expected
