"""Writer: a labels layer (and optionally the tracks layer's divisions) -> a CTC result folder."""

from __future__ import annotations

from typing import Any

import numpy as np

from ctc.errors import CTCFormatError
from ctc.export import tracks_from_labels


def write_ctc(path: str, layer_data: list[tuple[Any, dict[str, Any], str]]) -> list[str]:
    """Write ``maskNNN.tif`` + ``res_track.txt`` (validated, atomic) from a ``(T, Y, X)`` labels layer whose
    values are track ids; the divisions come from a tracks layer's ``graph`` ({daughter: [mother]}) if given."""
    from ctc.io import ResultWriter, default_ndigits

    labels = [np.asarray(data) for data, _, kind in layer_data if kind == "labels"]
    if len(labels) != 1 or labels[0].ndim != 3:
        raise CTCFormatError(f"{path}: save one (T, Y, X) labels layer (with its tracks layer, if any)")
    graph: dict[int, list[int]] = {}
    for _, meta, kind in layer_data:
        if kind == "tracks":
            graph.update({int(k): [int(p) for p in v] for k, v in (meta.get("graph") or {}).items()})
    parents = {daughter: mothers[0] for daughter, mothers in graph.items() if mothers}
    stack = labels[0]
    tracks = tracks_from_labels(stack, parents)
    with ResultWriter(path, default_ndigits(len(stack))) as writer:
        for t, frame in enumerate(stack):
            writer.write_mask(t, frame)
        writer.finish(tracks)
    return [path]
