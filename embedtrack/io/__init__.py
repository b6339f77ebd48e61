"""Inputs and outputs: the disk and network edge around the in-memory core.

A run of one sequence (input -> ``Tracker`` -> CTC writer, ``<SEQ>_RES.json``), many sequences on Dask, pictures of
a result, the CTC dataset download. The file formats themselves are ``ctc``'s.

Modules:

- ``batch``: many sequences as Dask tasks: discovery, skip/resume rules, local cluster, report
- ``download``: CTC dataset download: resumable, size and SHA-256 checked, unpacked atomically
- ``pipeline``: run_sequence(): any accepted input -> Tracker -> ctc writer, timings, <SEQ>_RES.json
- ``show``: overlay movie (GIF) + lineage plot of a result

May import: ``embedtrack.inference``, ``embedtrack.models``, ``embedtrack.errors``, ``embedtrack.openmp``, ``ctc``
(never ``training``, ``napari``, ``cli``); checked by ``tests/test_layering.py``.
"""
