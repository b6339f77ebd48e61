"""napari plugin (npe2 manifest ``napari.yaml``): open a CTC result folder or a geff store as labels + tracks,
save labels (and tracks) as a CTC result folder, and a dock widget that segments and tracks an image layer.

Only the dock widget (``_dock``, magicgui) imports napari: the reader, the writer and the widget's tracking
generator (``_widget``) work on plain arrays and napari's layer-data tuples, so they are tested without a display
(``tests/embedtrack/test_napari_plugin.py``); the widget is tested in a viewer under a virtual display
(``tests/embedtrack/test_napari_viewer.py``). Install napari with ``pip install ".[napari]"``.

May import ``embedtrack.inference``, ``embedtrack.models``, ``embedtrack.errors``, ``ctc`` (never ``io``,
``training``, ``cli``); checked by ``tests/test_layering.py``.
"""
