"""The dock widget *Track cells (embedtrack)* in a real napari viewer: it tracks an image layer in a worker thread
with a progress bar and adds a labels and a tracks layer; errors become one-line notifications.

These tests need napari with a Qt binding, pytest-qt and a display; they are skipped where one is missing. With the
extra ``napari`` (napari, PyQt5, pytest-qt, pytest-xvfb) and the X virtual frame buffer (``apt-get install xvfb``),
plain ``pytest tests/embedtrack/test_napari_viewer.py`` runs them: pytest-xvfb starts a virtual display. Without
pytest-xvfb: ``xvfb-run -a pytest tests/embedtrack/test_napari_viewer.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

napari = pytest.importorskip("napari")
pytest.importorskip("pytestqt")
pytest.importorskip("qtpy.QtWidgets")  # a Qt binding (PyQt5, PyQt6, PySide2 or PySide6)
if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
    pytest.skip("no display: run under `xvfb-run -a pytest ...` or install pytest-xvfb", allow_module_level=True)

from napari.utils.notifications import Notification, notification_manager  # noqa: E402

from ctc.synth import generate_sequence  # noqa: E402
from embedtrack.napari._dock import FOLDER, TrackingWidget  # noqa: E402

WAIT_MS = 60_000


@pytest.fixture
def viewer() -> Iterator[Any]:
    viewer = napari.Viewer(show=False)
    yield viewer
    viewer.close()


@pytest.fixture
def notes() -> Iterator[list[str]]:
    """The messages of the napari notifications shown during the test."""
    seen: list[str] = []

    def keep(event: Any) -> None:
        note = event if isinstance(event, Notification) else getattr(event, "value", event)
        seen.append(str(note.message))

    notification_manager.notification_ready.connect(keep)
    yield seen
    notification_manager.notification_ready.disconnect(keep)


def _movie() -> np.ndarray:
    return np.stack(generate_sequence("fluo", 4, (64, 64), seed=5).images)


def _dock(viewer: Any) -> TrackingWidget:
    _, widget = viewer.window.add_plugin_dock_widget("embedtrack", "Track cells (embedtrack)")
    return widget


def test_widget_tracks_an_image_layer_in_a_worker(viewer: Any, qtbot: Any, tiny_model: Path) -> None:
    from embedtrack.inference.tracker import Tracker

    frames = _movie()
    viewer.add_image(frames, name="movie", scale=(1.0, 0.5, 0.5))
    widget = _dock(viewer)
    assert widget.image.value == "movie" and {"Fluo-N2DH-SIM+", FOLDER} <= set(widget.model.choices)
    widget.model.value, widget.folder.value, widget.device.value = FOLDER, tiny_model, "cpu"
    assert not widget.folder.native.isHidden() and widget.settings["min_size"].value == 4  # the tiny model's own value
    widget.settings["min_size"].value = 6
    steps: list[int] = []
    widget.progress.changed.connect(steps.append)
    widget.button.native.click()
    assert widget.worker is not None and widget.button.text == "Stop"
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)  # the event loop ran while it tracked
    assert steps == [1, 2, 3, 4] and widget.progress.max == 4 and widget.button.text == "Track"

    labels, tracks, graph = Tracker.from_model(tiny_model, device="cpu", min_size=6).track(frames).to_napari()
    assert len(tracks) > 0
    layer = viewer.layers["movie labels"]
    assert layer.data.shape == (4, 64, 64) and tuple(layer.scale) == (1.0, 0.5, 0.5)
    np.testing.assert_array_equal(layer.data, labels)
    track_layer = viewer.layers["movie tracks"]
    assert track_layer.data.shape == tracks.shape and track_layer.data.shape[1] == 4
    np.testing.assert_allclose(track_layer.data, tracks)
    assert track_layer.graph == graph


def test_widget_errors_are_one_line_notifications(viewer: Any, qtbot: Any, tmp_path: Path,
                                                  notes: list[str]) -> None:
    widget = _dock(viewer)
    widget.button.native.click()
    assert widget.worker is None and notes[-1].startswith("image: open a (T, Y, X) time-lapse")
    viewer.add_image(np.zeros((32, 32)), name="still")
    widget.button.native.click()
    assert widget.worker is None and "expected a time-lapse (T, Y, X)" in notes[-1]

    viewer.layers.remove("still")
    viewer.add_image(_movie(), name="movie")
    widget.model.value, widget.folder.value, widget.device.value = FOLDER, tmp_path, "cpu"  # not a model
    widget.button.native.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)
    assert str(tmp_path) in notes[-1] and "\n" not in notes[-1]
    assert [layer.name for layer in viewer.layers] == ["movie"]


def test_stop_ends_the_run_after_the_current_frame(viewer: Any, qtbot: Any, notes: list[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import embedtrack.napari._dock as dock

    stopped = threading.Event()

    def slow_steps(frames: Any, *args: Any, **kwargs: Any) -> Any:  # frame 2 ends only once Stop was clicked
        yield 1
        assert stopped.wait(WAIT_MS / 1000)
        yield 2
        raise AssertionError("the run went on after Stop")

    monkeypatch.setattr(dock, "track_steps", slow_steps)
    viewer.add_image(_movie(), name="movie")
    widget = _dock(viewer)

    def stop_at(done: int) -> None:
        if done == 1:
            widget.button.native.click()
            stopped.set()

    widget.progress.changed.connect(stop_at)
    widget.button.native.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)
    assert notes[-1] == "embedtrack: tracking stopped" and widget.button.text == "Track"
    assert [layer.name for layer in viewer.layers] == ["movie"]


def test_viewer_opens_a_geff_store_and_a_result(viewer: Any, tmp_path: Path) -> None:
    pytest.importorskip("geff")
    from ctc import export
    from tests.conftest import GT_TRACKS, gt_masks, write_result

    res = write_result(tmp_path / "01_RES", gt_masks(), GT_TRACKS)
    store = export.write_geff(export.track_table(gt_masks(), GT_TRACKS), gt_masks(), tmp_path / "01_RES.geff.zarr")
    for path in (store, res):
        layers = viewer.open(str(path), plugin="embedtrack")
        assert [type(layer) for layer in layers] == [napari.layers.Labels, napari.layers.Tracks]
        assert layers[0].data.shape == (5, 32, 32) and layers[1].graph == {3: [2], 4: [2]}
        np.testing.assert_array_equal(np.asarray(layers[0].data), np.stack(gt_masks()))


def test_thresholds_left_as_shown_are_the_models_own(viewer: Any, qtbot: Any, tiny_model: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import embedtrack.napari._dock as dock
    from embedtrack.models.registry import read_config, write_inference

    model = Path(shutil.copytree(tiny_model, tmp_path / "precise"))
    write_inference(model, read_config(model).inference.replace(seed_threshold=0.53719, kernel_threshold=0.41))
    passed: dict[str, Any] = {}

    def record(frames: Any, source: Any, device: str, **settings: Any) -> Any:
        passed.update(source=source, device=device, **settings)
        yield len(frames)
        return []

    monkeypatch.setattr(dock, "track_steps", record)
    viewer.add_image(_movie(), name="movie")
    widget = _dock(viewer)
    widget.model.value, widget.folder.value, widget.device.value = FOLDER, model, "cpu"
    assert widget.settings["seed_threshold"].value == pytest.approx(0.5372)  # shown to 4 decimals
    widget.settings["kernel_threshold"].value = 0.35
    widget.button.native.click()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=WAIT_MS)
    assert passed == {"source": model, "device": "cpu", "kernel_threshold": 0.35}  # 0.53719 stays the model's


def test_widget_shows_the_generalist_first_with_its_use(viewer: Any) -> None:
    widget = _dock(viewer)
    assert widget.model.value == "fluo-nuclei-generalist" and "fluorescent nuclei" in widget.note.value
    widget.model.value = "Fluo-C2DL-MSC"
    assert "large cells" in widget.note.value


def test_napari_offers_embedtrack_for_a_result_folder_and_a_geff_store(viewer: Any, tmp_path: Path) -> None:
    """What napari lists when it lets the user choose (a folder dragged in, ``viewer.open(path, plugin=None)``).
    ``viewer.open(path)`` itself reads with napari's built-in reader (its default ``plugin="napari"``), which a
    plugin cannot change: hence ``plugin="embedtrack"`` in the docs."""
    pytest.importorskip("geff")
    from napari.plugins._npe2 import get_readers

    from ctc import export
    from tests.conftest import GT_TRACKS, gt_masks, write_result

    res = write_result(tmp_path / "01_RES", gt_masks(), GT_TRACKS)
    store = export.write_geff(export.track_table(gt_masks(), GT_TRACKS), gt_masks(), tmp_path / "01_RES.geff.zarr")
    for path in (res, store):
        assert "embedtrack" in get_readers(str(path))
