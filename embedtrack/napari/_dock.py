"""The dock widget *Track cells (embedtrack)* (magicgui; needs napari).

The user picks an image layer, a model (a bundled name, the generalist for fluorescent nuclei first, with a line
saying what the chosen one is for; or *folder…* and a model folder), the device, the appearance stage's
*cell size* and *denoise* (``auto``, ``off`` or a number, :mod:`embedtrack.inference.appearance`) and the
main thresholds, which show the chosen model's own values (a value left as shown is passed on as the model's
own, not rounded to the spin box). *Track* runs :func:`~embedtrack.napari._widget.track_steps` in a napari
worker thread, so the viewer stays responsive, with a progress bar advanced per frame; the button then reads
*Stop* and ends the run after the current frame. The labels and tracks layers are added (with the image layer's
scale and translation) when the run ends; an error is shown as one napari notification line.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any

from magicgui import widgets
from napari.layers import Image, Layer
from napari.qt.threading import GeneratorWorker, create_worker
from napari.utils.notifications import show_error, show_info

from ctc.errors import CTCError
from embedtrack.inference.appearance import check_setting
from embedtrack.errors import EmbedTrackError
from embedtrack.models.inference_config import InferenceConfig, field_help
from embedtrack.napari._reader import LayerData
from embedtrack.napari._widget import MAIN_SETTINGS, check_image, model_choices, model_note, track_steps
from embedtrack.models.registry import read_config, resolve_model

FOLDER = "folder…"
DEVICES = ("auto", "cpu", "cuda")


def one_line(err: BaseException) -> str:
    """What a notification says about an error: the package's own message, else the error's type and message."""
    text = str(err) if isinstance(err, (EmbedTrackError, CTCError)) else f"{type(err).__name__}: {err}"
    return text.strip().splitlines()[0] if text.strip() else type(err).__name__


def setting_widget(name: str) -> widgets.Widget:
    """A spin box for one :class:`InferenceConfig` value, with its range (open ends kept 0.01 inside) and help."""
    spec = next(f for f in dataclasses.fields(InferenceConfig) if f.name == name)
    meta = spec.metadata
    lo = 0.0 if meta.get("lo") is None else meta["lo"] + (0.01 if meta.get("lo_open") else 0)
    hi = 100_000 if meta.get("hi") is None else meta["hi"] - (0.01 if meta.get("hi_open") else 0)
    options = {"label": name.replace("_", " "), "tooltip": field_help(name), "value": spec.default}
    if typing.get_type_hints(InferenceConfig)[name] is int:
        return widgets.SpinBox(min=int(lo), max=int(hi), **options)
    box = widgets.FloatSpinBox(min=lo, max=hi, step=0.05, **options)
    box.native.setDecimals(4)
    return box


class TrackingWidget(widgets.Container):
    """Image layer, model, device, thresholds, *Track*/*Stop* and a progress bar (see the module docstring)."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.image = widgets.ComboBox(label="image", choices=self._image_names)
        names, first = model_choices()
        self.model = widgets.ComboBox(label="model", choices=[*names, FOLDER], value=first or FOLDER)
        self.note = widgets.Label(label="", value="")
        self.folder = widgets.FileEdit(label="model folder", mode="d", visible=False)
        self.device = widgets.ComboBox(label="device", choices=DEVICES)
        self.appearance = {
            "cell_size": widgets.LineEdit(label="cell size", value="auto", tooltip="Typical cell diameter (pixels) "
                                          "of the image: auto (estimated), off, or a number"),
            "denoise": widgets.LineEdit(label="denoise", value="auto", tooltip="Gaussian sigma (pixels) applied "
                                        "before the network: auto (when the image is noisier than the model's "
                                        "training data), off, or a number")}
        self.settings = {name: setting_widget(name) for name in MAIN_SETTINGS}
        self.button = widgets.PushButton(text="Track")
        self.progress = widgets.ProgressBar(label="frames", min=0, max=1, value=0)
        self.extend([self.image, self.model, self.note, self.folder, self.device, *self.appearance.values(),
                     *self.settings.values(), self.button, self.progress])
        self.worker: GeneratorWorker | None = None
        self.shown: dict[str, Any] = {}  # the model's values as the spin boxes show them
        self.model.changed.connect(self._model_changed)
        self.folder.changed.connect(self._model_changed)
        self.button.clicked.connect(self._track_or_stop)
        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            event.connect(self.image.reset_choices)
        self._model_changed()

    def _image_names(self, *_: Any) -> list[str]:
        return [layer.name for layer in self.viewer.layers if isinstance(layer, Image)]

    def model_source(self) -> str | Path:
        """The chosen bundled model's name or model folder."""
        if self.model.value != FOLDER:
            return str(self.model.value)
        folder = Path(self.folder.value)
        if not str(self.folder.value) or not folder.is_dir():
            raise EmbedTrackError(f"model folder: choose a model folder (config.json + weights.pt); got {folder}")
        return folder

    def _model_changed(self, *_: Any) -> None:
        """Show the folder field for *folder…* and the model's own thresholds."""
        self.folder.visible = self.model.value == FOLDER
        self.note.value = "" if self.model.value == FOLDER else model_note(str(self.model.value))
        try:
            inference = read_config(resolve_model(self.model_source())).inference
        except (EmbedTrackError, CTCError, OSError):
            return  # not a model (yet); tracking says why
        for name, widget in self.settings.items():
            widget.value = getattr(inference, name)
        self.shown = {name: widget.value for name, widget in self.settings.items()}

    def _track_or_stop(self, *_: Any) -> None:
        if self.worker is not None:
            self.worker.quit()
            return
        try:
            self.start()
        except (EmbedTrackError, CTCError) as err:
            show_error(one_line(err))

    def start(self) -> GeneratorWorker:
        """Start tracking the chosen image layer in a worker thread."""
        if not self.image.value:
            raise EmbedTrackError("image: open a (T, Y, X) time-lapse as an image layer first")
        layer = self.viewer.layers[self.image.value]
        frames = check_image(layer.data)
        settings = {name: widget.value for name, widget in self.settings.items()  # unchanged: the model's own
                    if name not in self.shown or widget.value != self.shown[name]}
        settings.update({name: check_setting(widget.value, name) for name, widget in self.appearance.items()})
        worker = create_worker(track_steps, frames, self.model_source(), str(self.device.value), _start_thread=False,
                               _ignore_errors=True,  # shown by the errored handler, as one line
                               **settings)
        worker.yielded.connect(self._frame_done)
        worker.returned.connect(lambda layers: self._add_layers(layers, layer))
        worker.errored.connect(lambda err: show_error(one_line(err)))
        worker.aborted.connect(lambda: show_info("embedtrack: tracking stopped"))
        worker.finished.connect(self._finished)
        self.progress.max, self.progress.value = len(frames), 0
        self.button.text, self.worker = "Stop", worker
        worker.start()
        return worker

    def _frame_done(self, done: int) -> None:
        self.progress.value = done

    def _add_layers(self, layers: list[LayerData], image: Image) -> None:
        for data, meta, kind in layers:
            name = f"{image.name} {kind}"
            self.viewer.add_layer(Layer.create(data, {**meta, "name": name, "scale": image.scale,
                                                      "translate": image.translate}, kind))

    def _finished(self) -> None:
        self.button.text, self.worker = "Track", None
