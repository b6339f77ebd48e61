"""Widget: segment and track an image layer (napari builds the form from the signature; the annotations name
napari's types as strings, so this module imports without napari)."""

from __future__ import annotations

import numpy as np

from embedtrack.napari._reader import LayerData


def track_image(image: napari.types.ImageData, model: str = "Fluo-N2DH-SIM+",  # noqa: F821
                seed_threshold: float = 0.0, min_size: int = 0,
                min_daughter_ratio: float = 0.0) -> list[napari.types.LayerDataTuple]:  # noqa: F821
    """Segment and track a ``(T, Y, X)`` image layer; returns a labels and a tracks layer. ``model``: a bundled
    name (Fluo-N2DH-SIM+, PhC-C2DL-PSC, BF-C2DL-HSC) or a model folder; a threshold of 0 keeps the model's."""
    from embedtrack.tracker import Tracker

    frames = np.asarray(image)
    if frames.ndim != 3:
        raise ValueError(f"the image layer has shape {frames.shape}; expected a time-lapse (T, Y, X)")
    overrides = {k: v for k, v in (("seed_threshold", seed_threshold), ("min_size", min_size),
                                   ("min_daughter_ratio", min_daughter_ratio)) if v}
    result = Tracker.from_model(model, device="auto", **overrides).track(frames)
    labels, tracks, graph = result.to_napari()
    layers: list[LayerData] = [(labels, {"name": f"{model} labels"}, "labels")]
    if len(tracks):
        layers.append((tracks, {"name": f"{model} tracks", "graph": graph}, "tracks"))
    return layers
