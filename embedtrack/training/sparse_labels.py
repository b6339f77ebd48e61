"""Training labels from the CTC ground truth as it is shipped: TRA markers on every frame, SEG outlines on some.

The CTC tracking ground truth (``<SEQ>_GT/TRA``) marks every cell on every frame, but for most datasets a marker
covers only part of its cell (about 1/2 to 2/3 of the area); full outlines (``<SEQ>_GT/SEG``) exist on a few
frames only, with their own label values. The paper (§4.3) fills this gap with silver truth; where none exists
the labels are built here:

* a frame with an outline: each SEG object takes the track id of the marker it covers
  (:func:`ctc.overlap.name_by_markers`); objects that cannot be named (no marker, several) are *unknown*
  (:data:`IGNORE`), not background; markers without an object (the CTC outlines only some cells of a frame)
  are treated as on a frame without outlines;
* a frame without an outline: the markers carry the ids, and a ring around each marker, as wide as
  ``ring_factor`` times the marker's equivalent radius plus 2 px (0.5: wide enough for a round marker of a
  quarter of its cell's area), is unknown.
  With ``fill="grow"`` the part of the ring that is bright (above the frame's Otsu threshold) is first given to
  the nearest marker by a watershed on the smoothed image (a pseudo-outline); the rest of the ring stays unknown.

The losses (:mod:`embedtrack.training.losses`) leave unknown pixels out: they are neither a cell's pixels nor
background, so a frame without an outline never teaches the network that a cell ends at its marker's edge. Identities,
and with them the tracking loss, are known on every frame.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.segmentation import watershed

from ctc.overlap import name_by_markers

#: Label value of pixels whose class is unknown (left out of every loss); track ids must stay below it.
IGNORE = 65535
#: Width of the unknown ring around a marker: ``ring_factor`` times the marker's equivalent radius plus RING_PX.
RING_PX = 2
FILLS = ("ignore", "grow")


def labels_from_outlines(seg: np.ndarray, markers: np.ndarray, image: np.ndarray | None = None,
                         fill: str = "ignore", ring_factor: float = 0.5) -> tuple[np.ndarray, int, int]:
    """Outlined frame: SEG objects named by the marker they cover, unnamed objects :data:`IGNORE`, markers
    without an object as in :func:`labels_from_markers`. Returns (uint16 labels, kept, dropped)."""
    named, kept, dropped = name_by_markers(seg, markers)
    labels = named.astype(np.uint16)
    outlined = np.asarray(seg) > 0
    labels[outlined & (named == 0)] = IGNORE
    orphan = np.unique(markers[(markers > 0) & ~outlined])
    orphan = orphan[~np.isin(orphan, np.unique(named))]
    if len(orphan):
        lone = labels_from_markers(np.where(np.isin(markers, orphan), markers, 0), image, fill, ring_factor)
        free = (labels == 0) & (lone > 0)
        labels[free] = lone[free]
    return labels, kept, dropped


def labels_from_markers(markers: np.ndarray, image: np.ndarray | None = None, fill: str = "ignore",
                        ring_factor: float = 0.5) -> np.ndarray:
    """Frame with markers only: the markers, a ring of :data:`IGNORE` around each (``fill="grow"``: its bright
    part first grown from the markers, see the module doc). Returns uint16 labels."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    markers = np.asarray(markers)
    labels = markers.astype(np.uint16)
    ring = _ring(markers, ring_factor)
    if fill == "grow" and image is not None and ring.any():
        grown = _grow(markers, image, ring)
        labels = np.where(grown > 0, grown, labels).astype(np.uint16)
    labels[ring & (labels == 0)] = IGNORE
    return labels


def _ring(markers: np.ndarray, ring_factor: float) -> np.ndarray:
    """Background pixels within each marker's ring width of that (nearest) marker."""
    background = markers == 0
    if background.all() or not background.any():
        return np.zeros(markers.shape, dtype=bool)
    dist, (rows, cols) = ndimage.distance_transform_edt(background, return_indices=True)
    nearest = markers[rows, cols]
    areas = np.bincount(markers.ravel().astype(np.int64))
    width = ring_factor * np.sqrt(areas / np.pi) + RING_PX
    return background & (dist <= width[nearest])


def _grow(markers: np.ndarray, image: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Markers grown by a watershed on the smoothed image into the bright part of their ring."""
    smooth = ndimage.gaussian_filter(np.asarray(image, dtype=np.float32), 1.0)
    bright = smooth > threshold_otsu(smooth)
    region = (markers > 0) | (ring & bright)
    return watershed(-smooth, markers.astype(np.int32), mask=region)
