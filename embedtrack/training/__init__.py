"""Training: labels from CTC folders, crops, losses, the loop, and what runs beside it (paper §3.2, §4.3).

Labels come from full GT, ST + markers or sparse GT; the loop validates through the inference ``Tracker``,
calibration chooses thresholds through it; DDP and the model folder lock run beside the loop.

Modules:

- ``calibrate``: thresholds chosen on annotated frames: the network once, a grid through the Tracker
- ``crops``: crop pairs and augmentation (§4.3 plus scale, elastic, intensity fields, noise)
- ``data``: §4.3 training labels from CTC folders (GT, ST + TRA, derived links), split, min size
- ``distributed``: DDP training hooks: process group, sharded crop pairs, rank-0-only writing
- ``heldout``: the held-out block of frames a model never trained on, cut out as a CTC folder
- ``lock``: the model folder lock (flock): of two runs into one folder only one trains
- ``loop``: training loop, fine-tuning (--init), checkpoints (weights only), resume, log
- ``conditions``: the training frames' conditions recorded in config.json (appearance)
- ``losses``: §3.2 Lovász hinge; instance, variance, seed and tracking losses
- ``metrics``: matched IoU for validation
- ``sparse_labels``: sparse GT: markers + some outlines as training labels

May import: ``embedtrack.inference``, ``embedtrack.models``, ``embedtrack.errors``, ``embedtrack.openmp``, ``ctc``
(never ``io``, ``napari``, ``cli``); checked by ``tests/test_layering.py``.
"""
