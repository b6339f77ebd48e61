"""Models: what a model folder is and records, and where the models live.

A model folder is ``config.json`` (architecture, :class:`InferenceConfig`, training settings) + ``weights.pt``; the
bundled folders (``Fluo-N2DH-SIM+/``, ``PhC-C2DL-PSC/``, ...) sit here beside the code and keep their names. The
inference settings and the network's channel layout live here, not in ``inference/``, because a model folder records
them (paper §3.1, §4.3).

Modules:

- ``architecture``: §3.1 branched ERFNet: encode(), decode_seg(), decode_track(); fold_batch_norm()
- ``device``: device, precision (bf16 in hardware?) and thread count (affinity, cgroup quota)
- ``inference_config``: InferenceConfig (normalisation, clustering, linking, border, scale); checks
- ``model_table``: the bundled models as Markdown tables (README, docs/training.md), figures from config.json
- ``predictions``: Predictions: the network's output channels by name (the one place they are packed)
- ``presets``: one table of per-dataset settings
- ``registry``: model folders (config.json + weights.pt), bundled models
- ``appearance_record``: AppearanceRecord, the conditions a model was trained at (config.json ``appearance``)
- bundled model folders: ``Fluo-C2DL-MSC/``, ``Fluo-N2DH-GOWT1/``, ``Fluo-N2DH-SIM+/``, ``PhC-C2DL-PSC/``,
``fluo-nuclei-generalist/``, ``synth-brightfield/``, ``synth-fluorescence/``

May import: ``embedtrack.errors``, ``embedtrack.openmp``, ``embedtrack._version``, ``ctc`` (never ``inference``,
``training``, ``io``, ``napari``, ``cli``); checked by ``tests/test_layering.py``.
"""
