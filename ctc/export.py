"""A tracking result as a table, a graph, a geff store or napari layers.

The table has one row per cell per frame (:data:`COLUMNS`): ``node_id`` (row number), ``track_id`` (the CTC track
label), ``t`` (frame number), ``y``, ``x`` (centroid, pixels), ``area`` (pixels), ``parent_track_id`` (0: none),
``label`` (the cell's value in that frame's mask; equal to ``track_id`` in a CTC result) and ``lineage_id`` (the
track id of the lineage's root). :func:`tracks_from_table` gives the CTC lineage back, so a CSV round-trips.

The graph (:func:`to_networkx`) has a node per row and an edge from a cell to itself in the next frame, and from
the last cell of a mother track to the first cell of each daughter. :func:`write_geff` writes it as a geff store
(``<OUT>/tracks``, axes t, y, x) with the label images as a related ``labels`` object (``<OUT>/segmentation``,
linked by the node property ``label``, its attribute ``first_index`` the frame number of its first image) and
``track_id`` / ``lineage_id`` as the tracklet and lineage properties (:mod:`ctc.geff_read` reads it back); it
needs the optional extra ``geff`` (``pip install ".[geff]"``).

Every writer goes through :mod:`ctc.writer` (atomic, never onto one of ``inputs``) and replaces an existing
output only with ``overwrite`` and only when it is what the same writer writes (:data:`TABLE`,
:data:`NAPARI_FOLDER`, :data:`GEFF_STORE`, checked by content): a raw frame, a ``man_track.txt`` or a run's
settings file is never replaced.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import numpy as np

from ctc.errors import CTCError, CTCFormatError
from ctc.guard import FILE, Kind, Layout, signature
from ctc.labels import label_stats
from ctc.lineage import Track
from ctc.writer import staged_folder, write_file

if TYPE_CHECKING:
    import networkx as nx

Table = dict[str, np.ndarray]
COLUMNS = ("node_id", "track_id", "t", "y", "x", "area", "parent_track_id", "label", "lineage_id")
FLOAT_COLUMNS = ("y", "x")
GEFF_GROUP, SEGMENTATION = "tracks", "segmentation"
NAPARI_FILES = ("labels.tif", "tracks.csv", "graph.json")

#: A CSV table of :func:`write_csv`: it starts with the header line of :data:`COLUMNS`.
TABLE = Kind("tracks table", content=signature((",".join(COLUMNS) + "\n").encode()))
#: The folder of :func:`write_napari`.
NAPARI_FOLDER = Kind("napari export folder", {"|".join(n.replace(".", r"\.") for n in NAPARI_FILES): FILE},
                     NAPARI_FILES)
_ZARR_TREE: dict[str, Any] = {r"\.zgroup|\.zattrs|\.zarray|zarr\.json|[0-9]+(\.[0-9]+)*": FILE}
_ZARR_TREE[r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"] = _ZARR_TREE  # groups and arrays, nested
_GEFF_LAYOUT: Layout = {r"\.zgroup|\.zattrs": FILE, GEFF_GROUP: _ZARR_TREE, SEGMENTATION: _ZARR_TREE}
#: The store of :func:`write_geff`: ``tracks`` and ``segmentation`` zarr groups (regular files and folders only).
GEFF_STORE = Kind("geff store of embedtrack export", _GEFF_LAYOUT, (GEFF_GROUP,))


def _roots(tracks: list[Track]) -> dict[int, int]:
    parent = {t.label: t.parent for t in tracks}
    roots: dict[int, int] = {}
    for label in parent:
        root = label
        while parent.get(root, 0):
            root = parent[root]
        roots[label] = root
    return roots


def track_table(labels: Iterable[np.ndarray], tracks: list[Track], first_index: int = 0) -> Table:
    """One row per cell per frame (:data:`COLUMNS`), ordered by frame then label."""
    parent, roots = {t.label: t.parent for t in tracks}, _roots(tracks)
    parts: list[np.ndarray] = []
    for i, frame in enumerate(labels):
        present, ys, xs, areas = label_stats(np.asarray(frame))
        unknown = [int(v) for v in present if int(v) not in parent]
        if unknown:
            raise CTCError(f"frame {first_index + i}: labels {unknown[:5]} have no track")
        par = np.array([parent[int(v)] for v in present], dtype=np.float64)
        root = np.array([roots[int(v)] for v in present], dtype=np.float64)
        parts.append(np.column_stack([present, np.full(present.size, first_index + i), ys, xs, areas, par,
                                      present, root]).astype(np.float64))
    rows = np.concatenate(parts) if parts else np.zeros((0, len(COLUMNS) - 1))
    table = {"node_id": np.arange(len(rows), dtype=np.int64)}
    for j, name in enumerate(COLUMNS[1:]):
        table[name] = rows[:, j] if name in FLOAT_COLUMNS else rows[:, j].astype(np.int64)
    return table


def tracks_from_table(table: Table) -> list[Track]:
    """The CTC lineage of a table: each track from its first to its last frame, with its parent."""
    tracks = []
    for label in np.unique(table["track_id"]):
        rows = table["track_id"] == label
        parents = np.unique(table["parent_track_id"][rows])
        if parents.size != 1:
            raise CTCError(f"track {label}: rows name several parents {parents.tolist()}")
        times = table["t"][rows]
        tracks.append(Track(int(label), int(times.min()), int(times.max()), int(parents[0])))
    return tracks


def tracks_from_labels(labels: Iterable[np.ndarray], parents: dict[int, int] | None = None,
                       first_index: int = 0) -> list[Track]:
    """The CTC tracks of label images whose values are track ids (each present in one unbroken run of frames);
    ``parents`` maps a daughter track to its mother."""
    from ctc.labels import label_set

    frames: dict[int, list[int]] = {}
    for i, frame in enumerate(labels):
        for label in label_set(np.asarray(frame)).tolist():
            frames.setdefault(int(label), []).append(first_index + i)
    tracks = []
    for label, present in sorted(frames.items()):
        if present[-1] - present[0] + 1 != len(present):
            raise CTCError(f"label {label} is missing in some frames between {present[0]} and {present[-1]}; "
                           "a CTC track cannot have gaps (give the part after the gap a new label)")
        tracks.append(Track(label, present[0], present[-1], (parents or {}).get(label, 0)))
    return tracks


# ---------------------------------------------------------------------------------------------------- CSV


def write_csv(table: Table, path: str | Path, overwrite: bool = False, inputs: Iterable[str | Path] = ()) -> Path:
    """The table as CSV (a header line of :data:`COLUMNS`) through :mod:`ctc.writer`: an existing ``path`` is
    replaced only with ``overwrite`` and only when it is such a table; never one of ``inputs``."""
    lines = [",".join(COLUMNS)]
    for i in range(len(table["node_id"])):
        lines.append(",".join(f"{table[c][i]:.3f}" if c in FLOAT_COLUMNS else str(int(table[c][i]))
                              for c in COLUMNS))
    return write_file(path, "\n".join(lines) + "\n", TABLE, inputs=inputs, overwrite=overwrite)


def read_csv(path: str | Path) -> Table:
    """A table written by :func:`write_csv` (or any CSV with these columns)."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise CTCFormatError(f"{path}: cannot read the tracks table ({err})") from err
    missing = [c for c in COLUMNS if rows and c not in rows[0]]
    if missing or not rows:
        raise CTCFormatError(f"{path}: not a tracks table (missing columns {missing or list(COLUMNS)})")
    try:
        return {c: np.array([float(r[c]) if c in FLOAT_COLUMNS else int(r[c]) for r in rows]) for c in COLUMNS}
    except (TypeError, ValueError) as err:
        raise CTCFormatError(f"{path}: a value is not a number ({err})") from err


# -------------------------------------------------------------------------------------------------- graphs


def to_networkx(table: Table) -> nx.DiGraph:
    """The lineage graph: a node per row (attributes: the other columns), edges forward in time."""
    import networkx as nx

    graph = nx.DiGraph()
    for i in range(len(table["node_id"])):
        graph.add_node(int(table["node_id"][i]), **{c: table[c][i].item() for c in COLUMNS[1:]})
    order = np.lexsort((table["t"], table["track_id"]))
    ids, tracks = table["node_id"][order], table["track_id"][order]
    same = tracks[1:] == tracks[:-1]
    graph.add_edges_from(zip(ids[:-1][same].tolist(), ids[1:][same].tolist()))
    first = {int(tracks[i]): int(ids[i]) for i in range(len(ids) - 1, -1, -1)}
    last = {int(tracks[i]): int(ids[i]) for i in range(len(ids))}
    for label in first:
        parent = int(table["parent_track_id"][first[label]])
        if parent in last:
            graph.add_edge(last[parent], first[label])
    return graph


GEFF_EXTRA = "needs the optional extra 'geff': in the embedtrack clone run pip install -c constraints.txt \".[geff]\""


def require_geff(what: str) -> None:
    """Raise one :class:`CTCError` naming the extra to install when geff (or zarr) is missing."""
    try:
        import geff  # noqa: F401
        import zarr  # noqa: F401
    except ImportError:
        raise CTCError(f"{what} {GEFF_EXTRA}") from None


def write_geff(table: Table, labels: Sequence[np.ndarray], path: str | Path, overwrite: bool = False,
               first_index: int = 0, inputs: Iterable[str | Path] = ()) -> Path:
    """The graph as a geff store ``<path>/tracks`` with the label images in ``<path>/segmentation``, through
    :mod:`ctc.writer` (:data:`GEFF_STORE`); ``first_index``: the frame number of the first label image (its
    attribute ``first_index``)."""
    require_geff(f"{path}: writing a geff store")
    import geff
    import zarr
    from geff_spec import GeffMetadata, RelatedObject

    with staged_folder(path, GEFF_STORE, inputs=inputs, overwrite=overwrite) as staging:
        store = staging.path
        _write_segmentation(zarr.open_group(str(store), mode="a", zarr_format=2), labels, first_index)
        geff.write(to_networkx(table), str(store / GEFF_GROUP), axis_names=["t", "y", "x"],
                   axis_types=["time", "space", "space"], axis_units=["frame", "pixel", "pixel"], zarr_format=2)
        meta = GeffMetadata.read(str(store / GEFF_GROUP))
        meta.track_node_props = {"tracklet": "track_id", "lineage": "lineage_id"}
        meta.related_objects = [RelatedObject(type="labels", path=f"../{SEGMENTATION}", node_prop="label")]
        meta.write(str(store / GEFF_GROUP))
        geff.validate_structure(str(store / GEFF_GROUP))
    return Path(path)


def _write_segmentation(root: Any, frames: Sequence[np.ndarray], first_index: int) -> None:
    """The label images as one ``(T, Y, X)`` uint16 array, written frame by frame."""
    array = None
    for t, frame in enumerate(frames):
        frame = np.asarray(frame, dtype=np.uint16)
        if array is None:
            array = root.create_array(SEGMENTATION, shape=(len(frames), *frame.shape), dtype=np.uint16,
                                      chunks=(1, *frame.shape))
            array.attrs["first_index"] = int(first_index)
        array[t] = frame
    if array is None:
        raise CTCError("no frames to write")


# -------------------------------------------------------------------------------------------------- napari


def napari_tracks(table: Table, first_index: int = 0) -> tuple[np.ndarray, dict[int, list[int]]]:
    """``(tracks (N, 4) rows [track_id, t, y, x], graph {daughter: [parent]})`` for napari's ``add_tracks``;
    t counts from 0 (the first frame)."""
    data = np.column_stack([table["track_id"], table["t"] - first_index, table["y"], table["x"]]).astype(float)
    data = data[np.lexsort((data[:, 1], data[:, 0]))]
    graph = {int(d): [int(p)] for d, p in zip(table["track_id"], table["parent_track_id"]) if p}
    return data, graph


def write_napari(table: Table, labels: Iterable[np.ndarray], folder: str | Path, first_index: int = 0,
                 overwrite: bool = False, inputs: Iterable[str | Path] = ()) -> Path:
    """``labels.tif`` (a T×Y×X stack), ``tracks.csv`` (track_id, t, y, x) and ``graph.json`` in ``folder``,
    through :mod:`ctc.writer` (:data:`NAPARI_FOLDER`)."""
    data, graph = napari_tracks(table, first_index)
    with staged_folder(folder, NAPARI_FOLDER, inputs=inputs, overwrite=overwrite) as staging:
        stack = np.stack([np.asarray(f, dtype=np.uint16) for f in labels])
        staging.tiff("labels.tif", stack, compression="zlib", imagej=True, metadata={"axes": "TYX"})
        lines = ["track_id,t,y,x"] + [f"{int(r[0])},{int(r[1])},{r[2]:.3f},{r[3]:.3f}" for r in data]
        staging.file("tracks.csv", "\n".join(lines) + "\n")
        staging.file("graph.json", json.dumps({str(k): v for k, v in graph.items()}) + "\n")
    return Path(folder)
