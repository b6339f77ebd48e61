"""The napari plugin without a display: the npe2 manifest, the reader on a result, the writer back to a CTC
folder, and the widget's function on an image stack."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest

from ctc.errors import CTCError
from ctc.io import open_result
from embedtrack.napari._reader import get_reader
from embedtrack.napari._widget import track_image
from embedtrack.napari._writer import write_ctc
from tests.conftest import GT_TRACKS, gt_masks, write_result

MANIFEST = Path(__file__).resolve().parents[2] / "embedtrack" / "napari" / "napari.yaml"


def test_manifest_is_valid_and_its_commands_import() -> None:
    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_file(MANIFEST)
    manifest.validate_imports()
    assert {c.id for c in manifest.contributions.commands} == {
        "embedtrack.read_result", "embedtrack.write_ctc", "embedtrack.track_image"}
    assert [e.value for e in entry_points(group="napari.manifest") if e.name == "embedtrack"] == [
        "embedtrack.napari:napari.yaml"]


def test_reader_opens_a_result_as_labels_and_tracks(tmp_path: Path) -> None:
    res = write_result(tmp_path / "01_RES", gt_masks(), GT_TRACKS)
    assert get_reader(str(tmp_path)) is None and get_reader(str(res / "mask000.tif")) is None
    (labels, _, kind), (tracks, meta, kind2) = get_reader(str(res))(str(res))
    assert (kind, kind2) == ("labels", "tracks")
    np.testing.assert_array_equal(labels, np.stack(gt_masks()))
    assert meta["graph"] == {3: [2], 4: [2]} and tracks.shape == (15, 4)
    assert sorted(set(tracks[tracks[:, 0] == 5][:, 1])) == [3, 4]


def test_writer_saves_what_the_reader_opened(tmp_path: Path) -> None:
    res = write_result(tmp_path / "01_RES", gt_masks(), GT_TRACKS)
    layers = get_reader(str(res))(str(res))
    assert write_ctc(str(tmp_path / "saved"), layers) == [str(tmp_path / "saved")]
    masks, tracks = open_result(tmp_path / "saved")
    np.testing.assert_array_equal(np.stack(list(masks)), np.stack(gt_masks()))
    assert sorted(tracks, key=lambda t: t.label) == GT_TRACKS
    gap = np.stack(gt_masks())
    gap[2][gap[2] == 1] = 0  # track 1 vanishes in frame 2 and comes back
    with pytest.raises(CTCError, match="label 1 is missing"):
        write_ctc(str(tmp_path / "gap"), [(gap, {}, "labels")])
    assert not (tmp_path / "gap").exists()


def test_widget_function_tracks_an_image_stack() -> None:
    from ctc.synth import generate_sequence
    from embedtrack.tracker import Tracker

    frames = np.stack(generate_sequence("fluo", 4, (96, 96), seed=5).images)
    layers = track_image(frames, "Fluo-N2DH-SIM+", min_size=20)
    expected = Tracker.from_model("Fluo-N2DH-SIM+", device="cpu", min_size=20).track(frames).to_napari()
    np.testing.assert_array_equal(layers[0][0], expected[0])
    np.testing.assert_array_equal(layers[1][0], expected[1])
    with pytest.raises(ValueError, match="expected a time-lapse"):
        track_image(frames[0])
