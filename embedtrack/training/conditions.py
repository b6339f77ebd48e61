"""The conditions a model trains at, recorded in its ``config.json`` (``appearance``) by ``embedtrack train``.

Cell diameter and body SNR of the training frames that have full masks (:mod:`ctc.conditions`), with the
appearance stage's own estimates (:func:`embedtrack.inference.appearance.record_from_pairs`); the stage compares a
sequence with them at inference.
"""

from __future__ import annotations

import logging

import numpy as np

from embedtrack.errors import EmbedTrackError
from embedtrack.inference.appearance import record_from_pairs
from embedtrack.models.appearance_record import AppearanceRecord
from embedtrack.training.data import TrackedSequence

logger = logging.getLogger(__name__)


#: At most this many labelled training frames per sequence are measured for the model's appearance record.
CONDITION_FRAMES = 20


def training_conditions(sequences: list[TrackedSequence], dataset: str) -> AppearanceRecord | None:
    """The conditions the model trains at (config.json ``appearance``, :mod:`embedtrack.inference.appearance`): cell
    diameter and body SNR of the training frames with full masks (sparse labels: the outlined cells of the
    outlined frames; markers are not cells), at most :data:`CONDITION_FRAMES` per sequence, evenly spaced. The
    frames are normalised already, which changes neither SNR nor diameter. None when no frame has full masks."""
    pairs, names = [], []
    for seq in sequences:
        times = [t for t in seq.train_positions() if seq.is_outlined(t)]
        times = [times[i] for i in np.linspace(0, len(times) - 1, min(len(times), CONDITION_FRAMES)).astype(int)] \
            if times else []
        for t in times:
            labels = seq.labels[t]
            if seq.outline_ids is not None:
                labels = np.where(np.isin(labels, seq.outline_ids[t]), labels, 0)
            pairs.append((seq.frames[t].astype(np.float32), labels))
        names.append(f"{dataset}/{seq.name} {len(times)} frames")
    try:
        return record_from_pairs(pairs, "; ".join(names) + " (training frames with full masks)")
    except EmbedTrackError:
        logger.warning("%s: no training frame with full masks; the model gets no appearance record", dataset)
        return None
