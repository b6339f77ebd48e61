"""The napari plugin without a display: the npe2 manifest, the reader on a result and on a geff store, the writer
back to a CTC folder, and the widget's function on an image stack (the widget itself: test_napari_viewer.py)."""

from __future__ import annotations

import importlib
import importlib.util
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
import pytest

from ctc.errors import CTCError
from ctc.io import open_result
from embedtrack.errors import EmbedTrackError
from ctc.lineage import Track
from embedtrack.napari._reader import get_reader, read_geff_store
from embedtrack.napari._widget import track_image
from embedtrack.napari._writer import write_ctc
from tests.conftest import GT_TRACKS, gt_masks, write_result

MANIFEST = Path(__file__).resolve().parents[2] / "embedtrack" / "napari" / "napari.yaml"


def test_manifest_is_valid_and_its_commands_import() -> None:
    """Every command resolves; the dock widget (magicgui) only where napari is installed."""
    npe2 = pytest.importorskip("npe2")
    manifest = npe2.PluginManifest.from_file(MANIFEST)
    commands = {c.id: c.python_name for c in manifest.contributions.commands}
    assert set(commands) == {"embedtrack.read_result", "embedtrack.write_ctc", "embedtrack.tracking_widget"}
    has_napari = importlib.util.find_spec("napari") is not None
    for command, python_name in commands.items():
        if command != "embedtrack.tracking_widget" or has_napari:
            module, name = python_name.split(":")
            assert callable(getattr(importlib.import_module(module), name)), python_name
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
    from embedtrack.inference.tracker import Tracker

    frames = np.stack(generate_sequence("fluo", 4, (96, 96), seed=5).images)
    layers = track_image(frames, "Fluo-N2DH-SIM+", min_size=20)
    expected = Tracker.from_model("Fluo-N2DH-SIM+", device="cpu", min_size=20).track(frames).to_napari()
    np.testing.assert_array_equal(layers[0][0], expected[0])
    np.testing.assert_array_equal(layers[1][0], expected[1])
    with pytest.raises(EmbedTrackError, match="expected a time-lapse"):
        track_image(frames[0])


def test_widget_refuses_a_huge_lazy_layer_before_loading_a_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The layer goes through the same limits as a file (ctc.frames.array_frames), before any model work."""
    from ctc.errors import CTCFormatError
    from embedtrack.inference.tracker import Tracker

    monkeypatch.setattr(Tracker, "from_model", lambda *a, **k: pytest.fail("the model was loaded"))
    with pytest.raises(CTCFormatError, match=r"the image layer: declares an image of 30000 x 30000"):
        track_image(np.broadcast_to(np.uint8(0), (4, 30000, 30000)))


def _same_layers(got: list, expected: list) -> None:
    assert [(kind, meta.get("graph")) for _, meta, kind in got] == [
        (kind, meta.get("graph")) for _, meta, kind in expected]
    for (data, _, _), (want, _, _) in zip(got, expected):
        np.testing.assert_array_equal(np.asarray(data), want)


def test_reader_opens_a_geff_export_like_the_result(tmp_path: Path) -> None:
    pytest.importorskip("geff")
    from click.testing import CliRunner

    from embedtrack.cli import main

    later = [Track(t.label, t.begin + 3, t.end + 3, t.parent) for t in GT_TRACKS]  # frames 3..7
    res = write_result(tmp_path / "01_RES", gt_masks(), later, first=3)
    out = CliRunner().invoke(main, ["export", str(res), "--to", "geff"])
    assert out.exit_code == 0, out.output
    store = tmp_path / "01_RES.geff.zarr"
    expected = get_reader(str(res))(str(res))
    assert get_reader(str(store)) is read_geff_store
    _same_layers(read_geff_store(str(store)), expected)  # t from the first frame, as for the result
    _same_layers(read_geff_store(str(store / "tracks")), expected)  # the graph's group itself


def test_reader_opens_a_geff_graph_without_tracklets_or_segmentation(tmp_path: Path) -> None:
    geff = pytest.importorskip("geff")
    import networkx as nx

    graph = nx.DiGraph()
    cells = {10: (0, 5.0, 5.0), 11: (1, 6.0, 5.0), 12: (2, 4.0, 3.0), 13: (2, 8.0, 7.0), 14: (1, 20.0, 20.0)}
    for node, (t, y, x) in cells.items():
        graph.add_node(node, t=t, y=y, x=x)
    graph.add_edges_from([(10, 11), (11, 12), (11, 13)])  # 11 divides into 12 and 13; 14 is alone
    geff.write(graph, str(tmp_path / "other.zarr"), axis_names=["t", "y", "x"],
               axis_types=["time", "space", "space"])
    [(tracks, meta, kind)] = get_reader(str(tmp_path / "other.zarr"))(str(tmp_path / "other.zarr"))
    assert kind == "tracks" and meta["graph"] == {3: [1], 4: [1]}
    np.testing.assert_array_equal(tracks, [[1, 0, 5, 5], [1, 1, 6, 5], [2, 1, 20, 20], [3, 2, 4, 3], [4, 2, 8, 7]])
    assert get_reader(str(tmp_path)) is None


def test_geff_reader_errors_name_the_store(tmp_path: Path) -> None:
    pytest.importorskip("geff")
    from ctc.geff_read import read_geff

    with pytest.raises(CTCError, match=f"{tmp_path}: not a geff store"):
        read_geff(tmp_path)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / ".zattrs").write_text('{"geff": {"geff_version": "1.3"}}')
    with pytest.raises(CTCError, match="not a valid geff group"):
        read_geff_store(str(tmp_path / "bad"))


def test_widget_starts_with_the_generalist_and_says_what_each_model_is_for() -> None:
    """Not the first name alphabetically (an MSC model merges nuclei): the fluorescent-nuclei generalist."""
    from embedtrack.models.model_table import USES
    from embedtrack.napari._widget import DEFAULT_MODEL, model_choices, model_note
    from embedtrack.models.registry import bundled_models

    names, first = model_choices()
    assert first == DEFAULT_MODEL == "fluo-nuclei-generalist" and sorted(names) == sorted(bundled_models())
    assert track_image.__defaults__ is not None and track_image.__defaults__[0] == DEFAULT_MODEL
    for name in names:
        assert name in USES and model_note(name) == f"for: {USES[name]}"
    assert model_note("/data/my-model") == "for: your own model"
