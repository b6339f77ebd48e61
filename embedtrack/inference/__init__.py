"""Inference: frames in, instance labels, links and a lineage out, in memory (paper §3.3-3.4, §4.4).

A frame goes normalise (and the per-sequence appearance stage where present) -> predict -> cluster -> whole cells ->
link -> lineage; :class:`~embedtrack.inference.tracker.Tracker` composes the stages. Arrays in and out; the disk is
the business of ``io/`` and ``ctc``.

Modules:

- ``appearance``: The per-sequence appearance stage: bring a sequence's cell size and noise to what the model was
trained at
- ``background``: ReadAhead / WriteBehind: reading ahead and writing behind in one thread each
- ``cluster``: §3.3 Predictions -> instance labels (the loop over candidate centres)
- ``cluster_dense``: §3.3 per-pixel stage in NumPy
- ``cluster_torch``: the same per-pixel stage in torch, on the device
- ``instances``: whole cells: one connected piece per label, islands reassigned, holes filled
- ``lineage``: LineageStage: corrections over a few frames (divisions, merges, gaps, short tracks)
- ``lineage_geometry``: the lineage stage's pixel geometry: votes, contact, centres, a merged mask parted
- ``link``: §3.4 labels + tracking offsets -> links
- ``predict``: §4.4 whole-frame or tiled prediction, streamed TTA, feature reuse, precision, compile
- ``preprocess``: per-frame percentile normalisation (training and inference), non-finite pixels
- ``results``: FrameInput, FrameResult, TrackResult (CTC folder, table, CSV, networkx, geff, napari)
- ``tracker``: Tracker: frames (+ masks) -> labels, links, lineage in memory
- ``stream``: TrackStream: frames taken, checked and prepared one ahead, the appearance stage decided on the first

May import: ``embedtrack.models``, ``embedtrack.errors``, ``embedtrack.openmp``, ``ctc`` (never ``training``,
``io``, ``napari``, ``cli``); checked by ``tests/test_layering.py``.
"""
