"""Reader: a CTC result folder (``maskNNN.tif`` + ``res_track.txt``) or a geff store (``embedtrack export --to
geff``, ``TrackResult.to_geff``, or another tool's geff group) -> a labels layer and a tracks layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ctc.lineage import TRACK_FILE_RES

LayerData = tuple[Any, dict[str, Any], str]


def get_reader(path: str | list[str]) -> Callable[[str], list[LayerData]] | None:
    """``read_result`` for a CTC result folder, ``read_geff_store`` for a geff store, else None (napari then asks
    other readers)."""
    from ctc.geff_read import find_geff

    if isinstance(path, list) or not Path(path).is_dir():
        return None
    folder = Path(path)
    if find_geff(folder) is not None:
        return read_geff_store
    if not (folder / TRACK_FILE_RES).is_file() or not any(folder.glob("mask*.tif")):
        return None
    return read_result


def read_result(path: str) -> list[LayerData]:
    """The masks as one ``(T, Y, X)`` labels layer and the lineage as a tracks layer (t from 0)."""
    from ctc.export import track_table
    from ctc.io import open_result

    masks, tracks = open_result(path)
    labels = np.stack(list(masks))
    return _layers(Path(path).name, labels, track_table(labels, tracks, masks.indices[0]), masks.indices[0])


def read_geff_store(path: str) -> list[LayerData]:
    """The graph as a tracks layer and, when the store has its segmentation, the label images as a labels layer
    (t from its first image; without one, t is the frame number). Needs the optional extra ``geff``."""
    from ctc.geff_read import read_geff

    table, segmentation, first = read_geff(path)
    return _layers(Path(path).name, segmentation, table, first)


def _layers(name: str, labels: Any, table: dict[str, np.ndarray], first_index: int) -> list[LayerData]:
    from ctc.export import napari_tracks

    layers: list[LayerData] = [] if labels is None else [(labels, {"name": f"{name} labels"}, "labels")]
    data, graph = napari_tracks(table, first_index)
    if len(data):
        layers.append((data, {"name": f"{name} tracks", "graph": graph}, "tracks"))
    return layers
