"""What the tracker hands out: a frame prepared for the network, a tracked frame, a tracked sequence.

:class:`TrackResult` writes a CTC result folder or converts to a tracks table, CSV, networkx graph, geff store
or napari layers (:mod:`ctc.export`); the tracker itself is :mod:`embedtrack.inference.tracker`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ctc.lineage import Track
from embedtrack.inference.appearance import Appearance
from embedtrack.models.inference_config import InferenceConfig

__all__ = ["FrameInput", "FrameResult", "TrackResult"]


@dataclass
class FrameInput:
    """One frame made ready for the network by :meth:`Tracker.prepare`: the raw frame, its normalised version
    (None without a predictor), the user's mask (or None) and the seconds spent so far per stage."""

    t: int
    frame: np.ndarray
    norm: np.ndarray | None
    mask: Any
    seconds: dict[str, float]


@dataclass
class FrameResult:
    """One tracked frame: ``instances`` (int32 labels), ``links`` ``{instance at t: instance at t-1}``,
    ``labels`` (uint16 CTC track ids), the seconds spent per stage (:data:`TRACKER_STAGES`) and ``shifted``
    (where the instance pixels' tracking offsets land at t-1, :func:`embedtrack.inference.link.shifted_targets`; None
    without offsets). From :meth:`Tracker.iter_track` the instances and links are those after the lineage
    stage's corrections."""

    t: int
    instances: np.ndarray
    links: dict[int, int]
    labels: np.ndarray
    seconds: dict[str, float]
    shifted: tuple[np.ndarray, np.ndarray] | None = None


@dataclass
class TrackResult:
    """A tracked sequence: per-frame track-id label images, links and the lineage (CTC tracks)."""

    labels: list[np.ndarray]
    links: list[dict[int, int]]
    tracks: list[Track]
    first_index: int = 0
    config: InferenceConfig = field(default_factory=InferenceConfig)
    appearance: Appearance | None = None  # what the appearance stage estimated and applied

    def write_ctc(self, output: str | Path, overwrite: bool = False) -> Path:
        """Write a CTC result folder (``maskNNN.tif`` + ``res_track.txt``), validated and moved into place; frame
        numbers above 9999 (no CTC name) are refused before anything is written."""
        from ctc.io import ResultWriter, check_frame_numbers, default_ndigits

        check_frame_numbers(output, self.first_index, self.first_index + len(self.labels) - 1)
        with ResultWriter(output, default_ndigits(self.first_index + len(self.labels)), overwrite) as writer:
            for i, labels in enumerate(self.labels):
                writer.write_mask(self.first_index + i, labels)
            return writer.finish(self.tracks)

    def to_napari(self) -> tuple[np.ndarray, np.ndarray, dict[int, list[int]]]:
        """``(labels (T, H, W), tracks (N, 4) rows [track_id, t, y, x], graph {daughter: [parent]})``: the
        arguments of napari's ``add_labels`` and ``add_tracks(tracks, graph=graph)``; t counts from 0."""
        from ctc.export import napari_tracks

        stack = np.stack(self.labels) if self.labels else np.zeros((0, 0, 0), np.uint16)
        tracks, graph = napari_tracks(self.to_table(), self.first_index)
        return stack, tracks, graph

    def to_table(self) -> dict[str, np.ndarray]:
        """One row per cell per frame: columns ``node_id, track_id, t, y, x, area, parent_track_id, label,
        lineage_id`` (:mod:`ctc.export`; ``pandas.DataFrame(result.to_table())`` makes a data frame)."""
        from ctc.export import track_table

        return track_table(self.labels, self.tracks, self.first_index)

    def to_csv(self, path: str | Path, overwrite: bool = False) -> Path:
        """The table as CSV (:meth:`to_table`), written atomically; an existing ``path`` is replaced only with
        ``overwrite`` and only when it is such a table (:func:`ctc.export.write_csv`)."""
        from ctc.export import write_csv

        return write_csv(self.to_table(), path, overwrite)

    def to_networkx(self) -> Any:
        """The lineage as a ``networkx.DiGraph``: a node per table row, edges forward in time and to daughters."""
        from ctc.export import to_networkx

        return to_networkx(self.to_table())

    def to_geff(self, path: str | Path, overwrite: bool = False) -> Path:
        """A geff store (``<path>/tracks``, segmentation in ``<path>/segmentation``); needs ``.[geff]``. An existing
        ``path`` is replaced only with ``overwrite`` and only when it is such a store."""
        from ctc.export import write_geff

        return write_geff(self.to_table(), self.labels, path, overwrite, self.first_index)
