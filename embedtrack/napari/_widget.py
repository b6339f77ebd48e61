"""Widget: segment and track an image layer.

:func:`track_steps` does the work as a generator (one step per tracked frame, the layers as its return value), so
that the dock widget (:mod:`embedtrack.napari._dock`, built with magicgui) runs it in a napari worker thread with a
progress bar; :func:`track_image` runs it to the end. This module imports without napari.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Generator

import numpy as np

from embedtrack.napari._reader import LayerData

#: The model the widget starts with: fluorescent nuclei of any kind, the most common first use.
DEFAULT_MODEL = "fluo-nuclei-generalist"

#: The thresholds the widget offers (:class:`~embedtrack.models.inference_config.InferenceConfig` names).
MAIN_SETTINGS = ("seed_threshold", "kernel_threshold", "min_size", "min_daughter_ratio", "min_track_frames")


def model_choices() -> tuple[list[str], str]:
    """The bundled models, :data:`DEFAULT_MODEL` first, and the one to start with (the first)."""
    from embedtrack.models.registry import bundled_models

    names = sorted(bundled_models(), key=lambda n: (n != DEFAULT_MODEL, n.casefold()))
    return names, names[0] if names else ""


def model_note(model: str | Path) -> str:
    """What the chosen model is for, as the widget shows it under the model box."""
    from embedtrack.models.model_table import use_of

    return f"for: {use_of(Path(str(model)).name)}"


def check_image(image: Any) -> Any:
    """The layer data when it is a ``(T, Y, X)`` time-lapse within the limits every input has (frame count,
    frame size, pixels: :func:`ctc.frames.array_frames`, before the model is loaded), else one error."""
    from ctc.frames import array_frames
    from embedtrack.errors import EmbedTrackError

    shape = tuple(getattr(image, "shape", np.shape(image)))
    if len(shape) != 3:
        raise EmbedTrackError(f"the image layer has shape {shape}; expected a time-lapse (T, Y, X) of one channel")
    return array_frames(image, "the image layer")


def track_steps(image: Any, model: str | Path, device: str = "auto", cell_size: str | float = "auto",
                denoise: str | float = "auto", **settings: Any) -> Generator[int, None, list[LayerData]]:
    """Track a ``(T, Y, X)`` image (any array, read frame by frame); yields the number of frames done after each
    frame and returns a labels and a tracks layer. ``cell_size``, ``denoise``: the appearance stage
    (:meth:`Tracker.iter_track`); ``settings``: :class:`InferenceConfig` values (None: the model's)."""
    from embedtrack.inference.tracker import Tracker, TrackResult

    frames = check_image(image)
    tracker = Tracker.from_model(model, device=device, **settings)
    labels: list[np.ndarray] = []
    with tracker.iter_track(frames, cell_size=cell_size, denoise=denoise) as stream:
        for result in stream:
            labels.append(result.labels)
            yield len(labels)
    stack, tracks, graph = TrackResult(labels, [], stream.tracks()).to_napari()
    name = Path(str(model)).name
    layers: list[LayerData] = [(stack, {"name": f"{name} labels"}, "labels")]
    if len(tracks):
        layers.append((tracks, {"name": f"{name} tracks", "graph": graph}, "tracks"))
    return layers


def track_image(image: Any, model: str | Path = DEFAULT_MODEL, device: str = "auto",
                cell_size: str | float = "auto", denoise: str | float = "auto", **settings: Any) -> list[LayerData]:
    """Segment and track a ``(T, Y, X)`` image; returns a labels and a tracks layer (napari layer-data tuples).
    ``model``: a bundled name or a model folder; ``cell_size``, ``denoise``: the appearance stage (``auto``,
    ``off`` or a number); ``settings``: :class:`InferenceConfig` values (None: the model's), e.g.
    ``min_size=20``."""
    steps = track_steps(image, model, device, cell_size, denoise, **settings)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value

