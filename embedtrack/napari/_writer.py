"""Writer: a labels layer (and optionally the tracks layer's divisions) -> a CTC result folder.

The folder is written by :class:`ctc.io.ResultWriter` (validated, atomic, an existing folder never replaced: napari
asks before saving over a file itself). Labels that are not whole numbers from 0 (NaN, fractions, negative values)
and a tracks graph that is not ``{track id: [parent track id]}`` are one :class:`~ctc.errors.CTCFormatError`
naming ``path``.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ctc.errors import CTCFormatError
from ctc.export import tracks_from_labels
from ctc.labels import as_labels


def _track_id(value: Any, path: str) -> int:
    """A whole, non-negative track id of a tracks layer's graph."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Integral, str, float, np.floating)):
        raise CTCFormatError(f"{path}: the tracks layer's graph holds {value!r}, not a track id")
    try:
        number = float(value)
    except ValueError:
        raise CTCFormatError(f"{path}: the tracks layer's graph holds {value!r}, not a track id") from None
    if not number.is_integer() or number < 0:
        raise CTCFormatError(f"{path}: the tracks layer's graph holds {value!r}, not a track id")
    return int(number)


def _parents(path: str, layer_data: list[tuple[Any, dict[str, Any], str]]) -> dict[int, int]:
    """``{daughter: mother}`` from the tracks layers' ``graph`` ({daughter: [mother]})."""
    parents: dict[int, int] = {}
    for _, meta, kind in layer_data:
        graph = meta.get("graph") or {} if kind == "tracks" else {}
        if not isinstance(graph, dict):
            raise CTCFormatError(f"{path}: the tracks layer's graph must map a track id to its parents")
        for daughter, mothers in graph.items():
            mothers = list(mothers) if isinstance(mothers, (list, tuple, np.ndarray)) else [mothers]
            if mothers:
                parents[_track_id(daughter, path)] = _track_id(mothers[0], path)
    return parents


def write_ctc(path: str, layer_data: list[tuple[Any, dict[str, Any], str]]) -> list[str]:
    """Write ``maskNNN.tif`` + ``res_track.txt`` (validated, atomic) from a ``(T, Y, X)`` labels layer whose
    values are track ids; the divisions come from a tracks layer's ``graph`` ({daughter: [mother]}) if given."""
    from ctc.io import ResultWriter, default_ndigits

    labels = [np.asarray(data) for data, _, kind in layer_data if kind == "labels"]
    if len(labels) != 1 or labels[0].ndim != 3:
        raise CTCFormatError(f"{path}: save one (T, Y, X) labels layer (with its tracks layer, if any)")
    stack = as_labels(labels[0], f"{path}: the labels layer")
    tracks = tracks_from_labels(stack, _parents(path, layer_data))
    with ResultWriter(path, default_ndigits(len(stack))) as writer:
        for t, frame in enumerate(stack):
            writer.write_mask(t, frame)
        writer.finish(tracks)
    return [path]
