"""napari plugin (npe2 manifest ``napari.yaml``): open a CTC result folder as labels + tracks, save labels (and
tracks) as a CTC result folder, and a widget that segments and tracks an image layer.

Nothing here imports napari: the reader and writer work on plain arrays and napari's layer-data tuples, so they
are tested without a display. Install napari itself with ``pip install ".[napari]"``.
"""
