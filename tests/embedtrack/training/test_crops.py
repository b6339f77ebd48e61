"""Tests of embedtrack.training.crops: grid and random crop pairs, padding, augmentation alignment, links."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from embedtrack.training.crops import Augment, CropPairs, collate, grid_positions
from embedtrack.training.data import TrackedSequence
from embedtrack.errors import EmbedTrackError

NO_INTENSITY = Augment.off(p_shift=0.5, max_shift=6)


def _moving_cells(frames: int, shape: tuple[int, int]) -> TrackedSequence:
    """Asymmetric L-shaped cells drifting by a pixel per frame; cell 2 divides into 5 and 6 at frame 4.

    The image equals the label image (as float) so that any misalignment of images and labels shows.
    """
    h, w = shape
    starts = {1: (4, 4), 2: (h // 2, w // 2), 3: (h - 16, 6), 4: (8, w - 18)}
    labels = []
    for t in range(frames):
        m = np.zeros(shape, np.uint16)
        for cell, (r, c) in starts.items():
            r, c = r + t, c + (t % 3)
            if cell == 2 and t >= 4:
                m[r - 6:r - 1, c:c + 6] = 5
                m[r + 3:r + 8, c:c + 4] = 6
                continue
            m[r:r + 9, c:c + 4] = cell  # vertical bar
            m[r + 6:r + 9, c + 4:c + 9] = cell  # foot to the right: no rotation/flip symmetry
        labels.append(m)
    return TrackedSequence("01", [m.astype(np.float16) for m in labels], labels, {1: 0, 2: 0, 3: 0, 4: 0, 5: 2, 6: 2})


def _single_cell(frames: int, shape: tuple[int, int], at: tuple[int, int]) -> TrackedSequence:
    labels = []
    for _ in range(frames):
        m = np.zeros(shape, np.uint16)
        m[at[0]:at[0] + 3, at[1]:at[1] + 3] = 1
        labels.append(m)
    return TrackedSequence("01", [m.astype(np.float16) for m in labels], labels, {1: 0})


# ------------------------------------------------------------------------------------------- grid mode


@pytest.mark.parametrize(("length", "crop"), [(80, 32), (100, 32), (64, 64), (65, 64), (20, 32), (256, 64)])
def test_grid_positions_cover_with_overlap(length: int, crop: int) -> None:
    starts = grid_positions(length, crop)
    assert starts[0] == 0 and starts == sorted(set(starts))
    assert starts[-1] + crop >= length
    assert all(s + crop <= max(length, crop) for s in starts)
    assert all(b < a + crop for a, b in zip(starts, starts[1:]))  # successive crops overlap
    covered = np.zeros(length, bool)
    for s in starts:
        covered[s:s + crop] = True
    assert covered.all()


def test_grid_mode_lists_every_crop_with_cells_and_only_those() -> None:
    seq = _single_cell(10, (80, 96), at=(2, 60))
    pairs = CropPairs([seq], 32, "train")
    ys, xs = grid_positions(80, 32), grid_positions(96, 32)
    expected = {(y, x) for y in ys for x in xs if y <= 2 + 2 and y + 32 > 2 and x <= 60 + 2 and x + 32 > 60}
    assert 1 < len(expected) < len(ys) * len(xs)
    for t in range(1, seq.n_train):
        assert {(r.y, r.x) for r in pairs.refs if r.t == t} == expected
    assert {r.t for r in pairs.refs} == set(range(1, seq.n_train))


def test_val_split_uses_the_last_frames() -> None:
    seq = _moving_cells(10, (48, 48))
    val = CropPairs([seq], 48, "val")
    assert {r.t for r in val.refs} == {9}
    train = CropPairs([seq], 48, "train")
    assert {r.t for r in train.refs} == set(range(1, 9))


def test_no_cells_or_no_pairs_is_a_clear_error() -> None:
    empty = TrackedSequence("01", [np.zeros((40, 40), np.float16)] * 5, [np.zeros((40, 40), np.uint16)] * 5, {})
    with pytest.raises(EmbedTrackError, match="holds a labelled cell"):
        CropPairs([empty], 32, "train")
    with pytest.raises(EmbedTrackError, match="holds a labelled cell"):
        CropPairs([empty], 32, "train", count=3)
    with pytest.raises(EmbedTrackError, match="no frame pairs.*val split"):
        CropPairs([_single_cell(2, (40, 40), (5, 5))], 32, "val")


# ------------------------------------------------------------------------------------------- random mode


def test_random_mode_draws_count_crops_with_cells() -> None:
    seq = _moving_cells(10, (96, 128))
    pairs = CropPairs([seq], 32, "train", count=11, seed=4)
    assert len(pairs) == 11
    first = [(r.t, r.y, r.x) for r in pairs.refs]
    for i in range(len(pairs)):
        sample = pairs[i]
        assert sample["labels_t"].shape == (32, 32) and sample["labels_t"].any()
    pairs.resample()
    assert len(pairs) == 11 and [(r.t, r.y, r.x) for r in pairs.refs] != first


def test_random_mode_finds_sparse_cells() -> None:
    seq = _single_cell(6, (300, 300), at=(250, 17))
    pairs = CropPairs([seq], 16, "train", count=5, seed=1)
    assert len(pairs) == 5
    for i in range(5):
        ref = pairs.refs[i]
        assert 0 <= ref.y <= 300 - 16 and 0 <= ref.x <= 300 - 16
        assert pairs[i]["labels_t"].any()


# ------------------------------------------------------------------------------------------- padding


def test_small_frames_are_padded_with_background() -> None:
    seq = _moving_cells(6, (40, 44))
    pairs = CropPairs([seq], 64, "train")
    assert len(pairs) == seq.n_train - 1  # one crop per pair
    for i in range(len(pairs)):
        sample = pairs[i]
        t = pairs.refs[i].t
        assert sample["image_t"].shape == (1, 64, 64) and sample["image_t"].dtype == torch.float32
        assert sample["labels_t"].shape == (64, 64) and sample["labels_t"].dtype == torch.int64
        image, labels = sample["image_t"][0].numpy(), sample["labels_t"].numpy()
        assert np.array_equal(labels[:40, :44], seq.labels[t])
        assert np.array_equal(image[:40, :44], seq.frames[t].astype(np.float32))
        assert not labels[40:].any() and not labels[:, 44:].any()
        assert np.array_equal(image, labels.astype(np.float32))  # no mirrored cells in the padding
        assert np.array_equal(sample["labels_prev"][:40, :44].numpy(), seq.labels[t - 1])


# ------------------------------------------------------------------------------------------- augmentation


def test_augmentation_keeps_images_and_labels_aligned() -> None:
    seq = _moving_cells(10, (72, 72))
    plain = CropPairs([seq], 48, "train", count=40, seed=2)
    augmented = CropPairs([seq], 48, "train", count=40, augment=NO_INTENSITY, seed=2)
    augmented.refs = list(plain.refs)
    changed_t = changed_prev = 0
    for i in range(len(plain)):
        a, p = augmented[i], plain[i]
        for image_key, label_key in (("image_t", "labels_t"), ("image_prev", "labels_prev")):
            assert np.array_equal(a[image_key][0].numpy(), a[label_key].numpy().astype(np.float32))
        changed_t += not torch.equal(a["labels_t"], p["labels_t"])
        changed_prev += not torch.equal(a["labels_prev"], p["labels_prev"])
        # the t crop is only rotated/flipped: the same cells with the same pixel counts
        counts = np.bincount(p["labels_t"].numpy().ravel(), minlength=8)
        assert np.array_equal(np.bincount(a["labels_t"].numpy().ravel(), minlength=8), counts)
    assert changed_t > 10 and changed_prev > 10  # rotations/flips (and shifts) did happen


def test_intensity_augmentations_keep_shape_and_type() -> None:
    seq = _moving_cells(6, (48, 48))
    strong = Augment(p_clahe=1.0, p_blur=1.0, p_gamma=1.0, p_shift=1.0, p_contrast=1.0, p_field=1.0, p_texture=1.0,
                     p_noise=1.0)
    pairs = CropPairs([seq], 48, "train", count=3, augment=strong, seed=0)
    for i in range(3):
        sample = pairs[i]
        assert sample["image_t"].shape == (1, 48, 48) and sample["image_t"].dtype == torch.float32
        assert torch.isfinite(sample["image_t"]).all() and torch.isfinite(sample["image_prev"]).all()
        assert not np.array_equal(sample["image_t"][0].numpy(), sample["labels_t"].numpy().astype(np.float32))


# ------------------------------------------------------------------------------------------- links


def test_links_refer_to_ids_present_in_the_crops() -> None:
    seq = _moving_cells(10, (72, 72))
    pairs = CropPairs([seq], 32, "train", count=30, augment=NO_INTENSITY, seed=5)
    division_rows = 0
    for i in range(len(pairs)):
        sample = pairs[i]
        links = sample["links"].numpy()
        ids_t = set(np.unique(sample["labels_t"].numpy()).tolist()) - {0}
        ids_p = set(np.unique(sample["labels_prev"].numpy()).tolist()) - {0}
        assert set(links[:, 0].tolist()) <= ids_t and set(links[:, 1].tolist()) <= ids_p
        assert len(set(links[:, 0].tolist())) == len(links)
        for a, b in links.tolist():
            assert a == b or seq.parents[a] == b
            division_rows += a != b
    assert division_rows > 0
    batch = collate([pairs[0], pairs[1]])
    assert batch["image_t"].shape == (2, 1, 32, 32)  # type: ignore[union-attr]
    assert isinstance(batch["links"], list) and len(batch["links"]) == 2


# ------------------------------------------------------------------------------ scale, elastic, intensity


def test_scale_and_elastic_warp_frames_and_labels_alike() -> None:
    """One coordinate map for t and t-1, images and labels: static cells stay identical and aligned."""
    moving = _moving_cells(6, (96, 96))
    static = TrackedSequence("01", [moving.frames[2]] * 6, [moving.labels[2]] * 6, moving.parents)
    pairs = CropPairs([static], 64, "train", count=40, augment=Augment.off(p_scale=1.0, p_elastic=1.0), seed=3)
    warped = 0
    for i in range(len(pairs)):
        s = pairs[i]
        assert torch.equal(s["labels_t"], s["labels_prev"]) and torch.equal(s["image_t"], s["image_prev"])
        lab, img = s["labels_t"].numpy(), s["image_t"][0].numpy()
        interior = ndimage.grey_erosion(lab, size=5) == ndimage.grey_dilation(lab, size=5)
        interior[[0, 1, -2, -1], :] = interior[:, [0, 1, -2, -1]] = False  # the frame's own edge may be near
        assert np.allclose(img[interior], lab[interior], atol=1e-3)  # the image is the label image, warped
        warped += not np.isin(np.bincount(lab.ravel(), minlength=8)[1:5], [36 + 15]).all()
    assert warped > 20  # the cell areas changed: scaling happened


def test_scale_range_magnifies_and_shrinks() -> None:
    seq = _single_cell(4, (128, 128), (56, 56))
    areas = []
    for lo, hi in ((1.35, 1.4), (0.7, 0.72)):
        aug = Augment.off(p_scale=1.0, scale=(lo, hi))
        pairs = CropPairs([seq], 96, "train", count=10, augment=aug, seed=1)
        areas.append(np.mean([(pairs[i]["labels_t"] > 0).sum().item() for i in range(len(pairs))]))
    plain = (seq.labels[1] > 0).sum()
    assert areas[0] > 1.7 * plain and areas[1] < 0.6 * plain


def test_noise_and_texture_differ_between_t_and_t_minus_1_but_the_field_does_not() -> None:
    seq = _single_cell(4, (64, 64), (20, 20))
    frames = [np.full((64, 64), 0.5, np.float16)] * 4
    flat = TrackedSequence("01", frames, seq.labels, seq.parents)
    field = CropPairs([flat], 64, "train", count=5, augment=Augment.off(p_field=1.0), seed=0)
    noisy = CropPairs([flat], 64, "train", count=5, augment=Augment.off(p_noise=1.0, max_noise=0.1), seed=0)
    f, n = field[0], noisy[0]
    assert torch.equal(f["image_t"], f["image_prev"]) and f["image_t"].std() > 0.01
    assert not torch.equal(n["image_t"], n["image_prev"])


def test_a_crops_augmentation_depends_on_its_index_and_epoch_only() -> None:
    """So that processes sharing an epoch's crops (DDP) augment each crop as one process would."""
    seq = _moving_cells(6, (64, 64))
    a = CropPairs([seq], 48, "train", count=6, augment=Augment(), seed=4)
    b = CropPairs([seq], 48, "train", count=6, augment=Augment(), seed=4)
    for i in (3, 0, 5):  # any order
        assert torch.equal(a[i]["image_t"], b[i]["image_t"]) and torch.equal(a[i]["labels_prev"], b[i]["labels_prev"])
    before = a[2]["image_t"]
    a.resample()
    assert not torch.equal(a[2]["image_t"], before)


# ------------------------------------------------------------------------------ camera noise to a body SNR


def _discs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[:96, :96]
    labels = np.zeros((96, 96), np.uint16)
    for label, (cy, cx) in enumerate([(24, 24), (24, 70), (70, 48)], start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= 100] = label
    rng = np.random.default_rng(seed)
    image = (0.1 + 0.8 * (labels > 0) + rng.normal(0.0, 0.01, labels.shape)).astype(np.float32)
    return image, labels


@pytest.mark.parametrize("snr", [1.0, 2.0, 4.0])
def test_camera_noise_reaches_the_target_body_snr_and_renormalises(snr: float) -> None:
    from ctc.conditions import body_snr
    from embedtrack.training.crops import camera_noise

    image, labels = _discs()
    rng = np.random.default_rng(1)
    a, b = camera_noise(image, image.copy(), labels, snr, rng)
    assert np.median(body_snr(a, labels)) == pytest.approx(snr, rel=0.2)
    assert np.median(body_snr(b, labels)) == pytest.approx(snr, rel=0.2)
    assert not np.array_equal(a, b)  # each frame its own noise
    for x in (a, b):
        lo, hi = np.percentile(x, [1.0, 99.0])
        assert lo == pytest.approx(0.0, abs=1e-5) and hi == pytest.approx(1.0, abs=1e-5)


def test_camera_noise_leaves_crops_that_are_already_noisier() -> None:
    from embedtrack.training.crops import camera_noise

    image, labels = _discs()
    noisy = image + np.random.default_rng(2).normal(0.0, 1.0, image.shape).astype(np.float32)  # SNR < 1
    a, b = camera_noise(noisy, noisy, labels, 4.0, np.random.default_rng(0))
    assert a is noisy and b is noisy


def test_crop_pairs_apply_camera_noise_when_drawn() -> None:
    image, labels = _discs()
    seq = TrackedSequence("01", [image.astype(np.float16)] * 4, [labels] * 4, {1: 0, 2: 0, 3: 0})
    plain = CropPairs([seq], 96, "train", count=4, augment=Augment.off(), seed=0)
    noisy = CropPairs([seq], 96, "train", count=4, augment=Augment.off(p_snr=1.0, snr=(1.5, 1.5)), seed=0)
    from ctc.conditions import body_snr

    snrs = [np.median(body_snr(noisy[i]["image_t"][0].numpy(), noisy[i]["labels_t"].numpy())) for i in range(4)]
    assert np.median(snrs) == pytest.approx(1.5, rel=0.25)
    assert np.median(body_snr(plain[0]["image_t"][0].numpy(), plain[0]["labels_t"].numpy())) > 20
