"""A geff store read back as a tracks table and its segmentation (what the napari plugin opens).

A store written by :func:`ctc.export.write_geff` (``embedtrack export --to geff``, ``TrackResult.to_geff``) holds
the graph in ``<store>/tracks`` and the label images in ``<store>/segmentation`` (a related ``labels`` object, with
the frame number of its first image as the attribute ``first_index``); another tool's geff group is read too when
it has one time and two space axes. Tracks are the store's tracklet property when every node has it, else the
chains of the graph (a node continues its predecessor's track when it is that node's only successor); a track's
parent is the track of its first node's predecessor. Needs the optional extra ``geff`` only to read a store,
not to find one (:func:`find_geff` reads the group's attributes as JSON).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ctc.errors import CTCFormatError
from ctc.export import GEFF_EXTRA, GEFF_GROUP, Table


def _attributes(group: Path) -> dict[str, Any]:
    """A zarr group's attributes (format 2 ``.zattrs`` or format 3 ``zarr.json``); empty when it has none."""
    for name, key in ((".zattrs", None), ("zarr.json", "attributes")):
        file = group / name
        if file.is_file():
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}
            except RecursionError:
                raise CTCFormatError(f"{file}: attributes nested too deeply to read; not a geff store of "
                                     "embedtrack") from None
            data = data.get(key, {}) if key and isinstance(data, dict) else data
            return data if isinstance(data, dict) else {}
    return {}


def find_geff(path: str | Path) -> Path | None:
    """The geff group of ``path`` (a store of :func:`~ctc.export.write_geff` or a geff group), else None."""
    path = Path(path)
    if not path.is_dir():
        return None
    return next((group for group in (path / GEFF_GROUP, path) if "geff" in _attributes(group)), None)


def read_geff(path: str | Path) -> tuple[Table, Any, int]:
    """``(table, segmentation, first_index)``: the table's columns ``node_id, track_id, t, y, x,
    parent_track_id``; the ``(T, Y, X)`` label images (a zarr array) or None; the frame number of their first
    image (0 without them). Raises :class:`CTCFormatError` for a store that is not one."""
    group = find_geff(path)
    if group is None:
        raise CTCFormatError(f"{path}: not a geff store (no geff group here or in {GEFF_GROUP}/)")
    try:
        import geff
    except ImportError:
        raise CTCFormatError(f"{path}: reading a geff store {GEFF_EXTRA}") from None
    try:
        graph, meta = geff.read(str(group), backend="networkx")
    except Exception as err:  # geff's own validation errors have no common base class
        raise CTCFormatError(f"{group}: not a valid geff group ({type(err).__name__}: {err})") from err
    table = _table(graph, meta, group)
    segmentation = _segmentation(group, meta)
    first = int(segmentation.attrs.get("first_index", 0)) if segmentation is not None else 0
    return table, segmentation, first


def _axes(meta: Any, group: Path) -> tuple[str, str, str]:
    """The names of the time axis and the two space axes."""
    axes = list(meta.axes or [])
    time = [a.name for a in axes if a.type == "time"]
    space = [a.name for a in axes if a.type == "space"]
    if len(time) != 1 or len(space) != 2:
        raise CTCFormatError(f"{group}: expected one time and two space axes, got "
                             f"{[(a.name, a.type) for a in axes]}")
    return time[0], space[0], space[1]


def _table(graph: Any, meta: Any, group: Path) -> Table:
    t_name, y_name, x_name = _axes(meta, group)
    attrs = graph.nodes
    nodes = sorted(graph.nodes, key=lambda n: attrs[n][t_name])
    prop = (meta.track_node_props or {}).get("tracklet")
    if prop is not None and all(prop in attrs[n] for n in nodes):
        track = {n: int(attrs[n][prop]) for n in nodes}
    else:
        track = _chains(graph, nodes)
    parents: dict[int, int] = {}
    for n in nodes:
        before = [track[p] for p in graph.predecessors(n) if track[p] != track[n]]
        if len(before) == 1:
            parents.setdefault(track[n], before[0])
    return {"node_id": np.arange(len(nodes), dtype=np.int64),
            "track_id": np.array([track[n] for n in nodes], dtype=np.int64),
            "t": np.array([attrs[n][t_name] for n in nodes], dtype=np.int64),
            "y": np.array([attrs[n][y_name] for n in nodes], dtype=float),
            "x": np.array([attrs[n][x_name] for n in nodes], dtype=float),
            "parent_track_id": np.array([parents.get(track[n], 0) for n in nodes], dtype=np.int64)}


def _chains(graph: Any, nodes: list[Any]) -> dict[Any, int]:
    """Track ids 1, 2, …: a node continues its only predecessor's track when it is that node's only successor."""
    track: dict[Any, int] = {}
    count = 0
    for n in nodes:
        before = list(graph.predecessors(n))
        if len(before) == 1 and before[0] in track and graph.out_degree(before[0]) == 1:
            track[n] = track[before[0]]
        else:
            count += 1
            track[n] = count
    return track


def _segmentation(group: Path, meta: Any) -> Any:
    """The related ``labels`` object as a zarr array, or None when the store has none (or it is missing)."""
    from ctc.zarr_frames import open_label_array

    related = [r for r in (meta.related_objects or []) if r.type == "labels"]
    if not related or not (group / related[0].path).exists():
        return None
    return open_label_array(Path(os.path.normpath(group / related[0].path)))  # checked like any frames
