"""Tests of whole_cells: one 4-connected piece per label, islands reassigned or dropped, holes filled."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage as ndi
from skimage.measure import label as label_regions

from embedtrack.errors import EmbedTrackError
from embedtrack.inference.instances import whole_cells

EIGHT = np.ones((3, 3), dtype=bool)


def n_pieces(labels: np.ndarray, lab: int) -> int:
    return int(ndi.label(labels == lab)[1])  # default structure: 4-connectivity


def enclosed_by_one_label(labels: np.ndarray) -> list[int]:
    """Labels that fully enclose some background region (8-connected, off the border): what a hole is."""
    background, n = ndi.label(labels == 0, structure=EIGHT)
    border = set(np.concatenate([background[0], background[-1], background[:, 0], background[:, -1]]).tolist())
    found = []
    for region in range(1, n + 1):
        if region in border:
            continue
        mask = background == region
        ring = ndi.binary_dilation(mask, EIGHT) & ~mask
        around = np.unique(labels[ring])
        if len(around) == 1 and around[0] > 0:
            found.append(int(around[0]))
    return found


label_images = arrays(np.int32, st.tuples(st.integers(1, 24), st.integers(1, 24)), elements=st.integers(0, 5))


def blocky(draw_small: np.ndarray) -> np.ndarray:
    """Upsample 2x so that random images also hold larger regions, enclosed holes and long borders."""
    return np.kron(draw_small, np.ones((2, 2), dtype=np.int32))


@settings(max_examples=300, deadline=None)
@given(label_images, st.booleans())
def test_properties_on_random_label_images(small: np.ndarray, upsample: bool) -> None:
    labels = blocky(small) if upsample else small
    out = whole_cells(labels)
    assert out.shape == labels.shape and out.dtype == labels.dtype
    ids_in = set(np.unique(labels).tolist()) - {0}
    assert set(np.unique(out).tolist()) - {0} == ids_in  # ids kept, none lost
    for lab in ids_in:
        assert n_pieces(out, lab) == 1  # never disconnected (4-connectivity, so 8 as well)
    assert enclosed_by_one_label(out) == []  # no hole remains
    pieces = label_regions(labels, background=0, connectivity=1)
    for lab in ids_in:
        if n_pieces(labels, lab) == 1:
            assert (out[labels == lab] == lab).all()  # a whole instance never loses a pixel
    sizes = np.bincount(pieces.ravel())
    largest = {lab: sizes[np.unique(pieces[labels == lab])].max() for lab in ids_in}
    for lab in ids_in:  # the largest piece of every label stays with it
        kept = [p for p in np.unique(pieces[labels == lab]) if sizes[p] == largest[lab]][0]
        assert (out[pieces == kept] == lab).all()
    new_fg = (labels == 0) & (out > 0)
    if new_fg.any():  # background became foreground only inside a hole of the label that filled it
        regions, _ = ndi.label(new_fg, structure=EIGHT)
        for region in np.unique(regions[regions > 0]):
            mask = regions == region
            ring = ndi.binary_dilation(mask, EIGHT) & ~mask
            assert not (mask[0].any() or mask[-1].any() or mask[:, 0].any() or mask[:, -1].any())
            assert len(np.unique(out[ring])) == 1 and np.unique(out[mask]).size == 1


def test_island_joins_the_neighbour_with_the_longest_border() -> None:
    labels = np.zeros((12, 20), dtype=np.int32)
    labels[1:11, 1:8] = 1
    labels[1:11, 12:19] = 2
    labels[11, :] = 3  # the largest piece of 3
    labels[7:9, 8:12] = 3  # an island of 3 touching 1 (2 pixel pairs) and 2 (2 pairs): a tie
    out = whole_cells(labels)
    assert (out[7:9, 8:12] == 1).all()  # the smaller label wins a tie
    assert (out[11] == 3).all()
    labels[7:9, 8:12] = 0
    labels[6:9, 9:12] = 3
    labels[8, 8] = 3  # now the island touches 1 with 1 pixel pair and 2 with 3
    out = whole_cells(labels)
    assert (out[6:9, 9:12] == 2).all() and out[8, 8] == 2


def test_stray_pixel_far_from_everything_is_dropped_and_hole_filled() -> None:
    labels = np.zeros((20, 20), dtype=np.int32)
    labels[2:12, 2:12] = 4
    labels[6:8, 6:8] = 0  # a hole inside 4
    labels[17, 17] = 4  # a stray pixel of 4, touching nothing
    labels[2:12, 12:16] = 5
    labels[12:14, 12:16] = 0
    out = whole_cells(labels)
    assert out[17, 17] == 0
    assert (out[6:8, 6:8] == 4).all()
    assert whole_cells(labels, fill_holes=False)[6, 6] == 0


def test_gap_between_two_cells_is_not_a_hole() -> None:
    labels = np.zeros((10, 10), dtype=np.int32)
    labels[2:8, 2:5] = 1
    labels[2:8, 6:9] = 2
    labels[2, 5] = labels[7, 5] = 1  # the column 5 gap is closed at both ends by 1, its sides are 1 and 2
    out = whole_cells(labels)
    assert (out[3:7, 5] == 0).all()


def test_chain_of_islands_and_bad_input() -> None:
    labels = np.zeros((6, 12), dtype=np.int32)
    labels[:, 0:4] = 1
    labels[0, 6:12] = 2  # the largest piece of 2
    labels[5, 6:12] = 3  # the largest piece of 3
    labels[2:4, 4:6] = 3  # an island of 3 touching 1
    labels[2:4, 6:8] = 2  # an island of 2 touching only the island of 3
    out = whole_cells(labels)
    assert (out[2:4, 4:8] == 1).all()  # 3's island joins 1, then 2's island joins the grown 1
    assert (out[0, 6:12] == 2).all() and (out[5, 6:12] == 3).all()
    with pytest.raises(EmbedTrackError, match="2-D"):
        whole_cells(np.zeros((2, 2, 2), dtype=np.int32))


def test_empty_and_dtype() -> None:
    for dtype in (np.uint16, np.int32, np.int64):
        assert not whole_cells(np.zeros((5, 7), dtype=dtype)).any()
        assert whole_cells(np.ones((5, 7), dtype=dtype)).dtype == dtype
