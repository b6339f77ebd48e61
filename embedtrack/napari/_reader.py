"""Reader: a CTC result folder (``maskNNN.tif`` + ``res_track.txt``) -> a labels layer and a tracks layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from ctc.lineage import TRACK_FILE_RES

LayerData = tuple[Any, dict[str, Any], str]


def get_reader(path: str | list[str]) -> Callable[[str], list[LayerData]] | None:
    """``read_result`` when ``path`` is a CTC result folder, else None (napari then asks other readers)."""
    if isinstance(path, list) or not Path(path).is_dir():
        return None
    folder = Path(path)
    if not (folder / TRACK_FILE_RES).is_file() or not any(folder.glob("mask*.tif")):
        return None
    return read_result


def read_result(path: str) -> list[LayerData]:
    """The masks as one ``(T, Y, X)`` labels layer and the lineage as a tracks layer (t from 0)."""
    from ctc.export import napari_tracks, track_table
    from ctc.io import open_result

    masks, tracks = open_result(path)
    labels = np.stack(list(masks))
    name = Path(path).name
    layers: list[LayerData] = [(labels, {"name": f"{name} labels"}, "labels")]
    data, graph = napari_tracks(track_table(labels, tracks, masks.indices[0]), masks.indices[0])
    if len(data):
        layers.append((data, {"name": f"{name} tracks", "graph": graph}, "tracks"))
    return layers
