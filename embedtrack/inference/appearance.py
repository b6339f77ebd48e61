"""The per-sequence appearance stage: bring a sequence's cell size and noise to what the model was trained at.

A network trained on one sequence of a dataset learns the size of its cells and how far they stand out of the
camera noise; another sequence of the same dataset, with cells twice as large or two to three times dimmer, is
outside what it has seen and its segmentation collapses (over-segmented large cells, noise taken for cells). The
paper's pipeline (§3.3–3.4) has no answer to that. Like cellpose's diameter estimate, this stage measures the
sequence once, on its first frame, and changes the frames before the network sees them:

* **Cell size**: the model's instances are measured on a first pass (median equivalent-disc diameter, at model
  scale) and compared with the same measure on the model's training frames (``appearance.diameter_estimate``
  in its ``config.json``; the labelled ``cell_diameter`` when that is missing), so a model that draws its cells
  a little small or large does not read that as another cell size; the frames are resampled by
  ``scale = training diameter / sequence diameter``. Scales tried: 1, then (outside the dead
  band) a small grid and one refinement step; the one whose instances come nearest the model's diameter wins.
  Within ±20 % (:data:`SCALE_DEAD_BAND`) nothing is resampled. A model cuts cells much larger than its own into
  pieces of its training size, and that first pass reads as the dead band; so a model-free size, the median
  diameter of Otsu objects (:func:`object_diameter`, against the same measure on the training frames,
  ``appearance.object_diameter``), is checked as well: when it sees larger cells and the first pass did not
  shrink the frame, the scale it implies is taken if the model finds cells of its own size there, else a
  magnification the first pass asked for is dropped (:func:`_check_objects`). Everything from the network to the lineage runs at
  model scale (``min_size`` is in model pixels anyway; the field-of-interest border is scaled); the label images
  come back to the exact input shape by nearest neighbour, and a cell that resampling would lose keeps one pixel.
* **Noise**: the body SNR of the sequence (the cells' mean above the background median, in units of the
  background's robust spread, :mod:`ctc.conditions`) is estimated without the model, on objects found by Otsu's
  threshold of a smoothed frame, and compared with the same estimate on the model's training frames
  (``appearance.snr_estimate``): the estimator's bias cancels. When the sequence is clearly noisier (the ratio
  exceeds :data:`SNR_DEAD_BAND`) the frames are smoothed with the smallest Gaussian of :data:`SIGMA_LADDER`
  (input pixels) after which the same estimate reaches :data:`SNR_TARGET` of the training SNR, or the one
  that brings it highest when none does (:func:`choose_sigma`; on a textured background the estimate peaks
  and falls again as cells blur into it). Measured rather than derived from the white-noise law (a Gaussian of sigma s keeps
  1 / (2 sqrt(pi) s) of white noise's spread), it holds for noise that is correlated, e.g. in upscaled frames,
  where the same sigma removes less. The sigma is chosen before the scale, so the first passes of the size
  estimate see frames the model can read.

``cell_size`` and ``denoise`` override the estimates: ``"auto"``, ``"off"`` or a number (the typical cell
DIAMETER in input pixels; a Gaussian sigma in input pixels). Off/off is the pipeline without this stage,
bit for bit. A model without an ``appearance`` record gets nothing from ``auto``.

Torch-free (numpy, scipy, scikit-image): the first pass is a callable handed in by the tracker.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

import numpy as np
from scipy import ndimage

from ctc.conditions import background_stats, body_snr, cell_diameters, measure
from embedtrack.errors import EmbedTrackError
from embedtrack.models.appearance_record import AppearanceRecord

logger = logging.getLogger(__name__)

AUTO, OFF = "auto", "off"
#: No resampling while the estimated scale is within this factor of 1 (either way).
SCALE_DEAD_BAND = 1.2
#: No denoising unless the training SNR estimate is more than this many times the sequence's.
SNR_DEAD_BAND = 1.5
#: Sigmas tried by auto denoising (input pixels), and the fraction of the training SNR estimate to reach.
SIGMA_LADDER = (0.75, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0)
SNR_TARGET = 0.4
#: Scales tried when scale 1 is outside the dead band (relative to 1), and the range a scale is kept in.
SCALE_GRID = (0.5, 0.7, 1.4, 2.0)
SCALE_LIMITS = (0.25, 4.0)
#: A magnification whose first pass holds more than this many times the instances of scale 1 is refused.
MAGNIFY_COUNT_LIMIT = 1.3
#: The first pass needs this many instances for a diameter.
MIN_INSTANCES = 3
#: Smoothing (pixels) before Otsu's threshold in the model-free SNR estimate, and the smallest object kept.
OTSU_SIGMA = 2.0
MIN_OBJECT_PX = 16


def record_from_pairs(pairs: Iterable[tuple[np.ndarray, np.ndarray]], frames: str) -> AppearanceRecord:
    """The record of (raw or normalised frame, full instance mask) pairs (SNR and diameter do not change under
    the per-frame normalisation, an affine map); ``frames`` says what was measured."""
    pairs = list(pairs)
    conditions = measure(pairs)
    if conditions is None:
        raise EmbedTrackError(f"{frames}: no labelled cell to measure the training conditions on")
    estimates = [e for e in (estimate_snr(f)[0] for f, _ in pairs) if e is not None]
    objects = [d for d in (object_diameter(f) for f, _ in pairs) if d is not None]
    return AppearanceRecord(cell_diameter=round(conditions.diameter_median, 2), snr=round(conditions.snr_median, 3),
                            snr_estimate=round(float(np.median(estimates)), 3) if estimates else None,
                            object_diameter=round(float(np.median(objects)), 2) if objects else None,
                            noise=round(conditions.noise, 4), cells=conditions.cells, frames=frames)


# ------------------------------------------------------------------------------------------ settings


def check_setting(value: Any, name: str) -> str | float:
    """``"auto"``, ``"off"`` or a number (``cell_size`` > 0, ``denoise`` >= 0); one clear error otherwise."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in (AUTO, OFF):
            return text
        try:
            value = float(text)
        except ValueError:
            raise EmbedTrackError(f"{name} must be auto, off or a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value):
        raise EmbedTrackError(f"{name} must be auto, off or a number, got {value!r}")
    if value < 0 or (name == "cell_size" and value == 0):
        raise EmbedTrackError(f"{name} must be {'> 0' if name == 'cell_size' else '>= 0'}, got {value}")
    return float(value)


# ------------------------------------------------------------------------------------------ the applied stage


@dataclass
class Appearance:
    """What the stage estimated and applied for one sequence. ``scale``: model pixels per input pixel;
    ``sigma``: Gaussian sigma in input pixels; ``*_from``: ``auto``, ``override``, ``off``, ``no record``,
    ``masks given`` or ``dead band`` (auto, within the band: nothing applied)."""

    scale: float = 1.0
    sigma: float = 0.0
    scale_from: str = OFF
    sigma_from: str = OFF
    cell_diameter: float | None = None  # the sequence's, input pixels (estimated or given)
    model_diameter: float | None = None
    snr: float | None = None  # the stage's estimate on the first frame
    model_snr: float | None = None  # the same estimate on the training frames
    noise: float | None = None  # background spread of the first frame (raw units)
    input_shape: tuple[int, int] | None = None
    model_shape: tuple[int, int] | None = None
    passes: int = 0  # first passes of the model spent on the estimate

    @property
    def resamples(self) -> bool:
        return self.model_shape is not None and self.model_shape != self.input_shape

    @property
    def active(self) -> bool:
        return self.resamples or self.sigma > 0

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """A raw frame as the network should see it: smoothed, then resampled to :attr:`model_shape`."""
        if not self.active:
            return frame
        out = np.asarray(frame, _work_dtype(frame))
        if self.sigma > 0:
            out = ndimage.gaussian_filter(out, self.sigma)
        return resample_frame(out, self.model_shape) if self.resamples else out  # type: ignore[arg-type]

    def restore(self, labels: np.ndarray) -> np.ndarray:
        """A label image at model scale back at the exact input shape."""
        if not self.resamples:
            return labels
        return resample_labels(labels, self.input_shape)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for key in ("input_shape", "model_shape"):
            data[key] = list(data[key]) if data[key] is not None else None
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in data.items()}

    def summary(self) -> str:
        def num(v: float | None, fmt: str = ".1f") -> str:
            return "?" if v is None else format(v, fmt)

        return (f"appearance: scale {self.scale:.3g} ({self.scale_from}; cell diameter {num(self.cell_diameter)} px, "
                f"model {num(self.model_diameter)} px), denoise sigma {self.sigma:.3g} px ({self.sigma_from}; "
                f"SNR {num(self.snr, '.2f')}, model {num(self.model_snr, '.2f')}, noise {num(self.noise, '.3g')})"
                + (f", {self.input_shape} -> {self.model_shape}" if self.resamples else ""))


# ------------------------------------------------------------------------------------------ resampling


def _work_dtype(frame: np.ndarray) -> type:
    """float64 for float64 frames (their values may lie beyond float32's range), float32 otherwise."""
    return np.float64 if np.asarray(frame).dtype == np.float64 else np.float32


def scaled_shape(shape: tuple[int, ...], scale: float) -> tuple[int, int]:
    return max(1, int(round(shape[0] * scale))), max(1, int(round(shape[1] * scale)))


def resample_frame(frame: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear resampling to ``shape`` (pixel centres aligned); a Gaussian prefilter against aliasing when
    shrinking (sigma = (1/scale - 1) / 2, as scikit-image's ``resize``)."""
    from skimage.transform import resize

    dtype = _work_dtype(frame)
    frame = np.asarray(frame, dtype)
    shrink = min(shape[0] / frame.shape[0], shape[1] / frame.shape[1])
    if shrink < 1:
        frame = ndimage.gaussian_filter(frame, (1 / shrink - 1) / 2)
    return resize(frame, shape, order=1, mode="edge", anti_aliasing=False, preserve_range=True).astype(dtype)


def resample_labels(labels: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resampling of a label image to ``shape``; a label that would vanish (a cell smaller
    than a pixel of the output) keeps the output pixel nearest its centre."""
    from skimage.transform import resize

    out = resize(labels, shape, order=0, mode="edge", anti_aliasing=False, preserve_range=True).astype(labels.dtype)
    lost = np.setdiff1d(np.unique(labels), np.unique(out))
    lost = lost[lost != 0]
    if lost.size:
        centres = ndimage.center_of_mass(np.ones(labels.shape), labels, lost)
        fy, fx = shape[0] / labels.shape[0], shape[1] / labels.shape[1]
        for value, (cy, cx) in zip(lost, centres):
            y = min(shape[0] - 1, max(0, int((cy + 0.5) * fy)))
            x = min(shape[1] - 1, max(0, int((cx + 0.5) * fx)))
            out[y, x] = value
    return out


# ------------------------------------------------------------------------------------------ estimates


def bright_objects(frame: np.ndarray) -> np.ndarray | None:
    """The model-free objects of a frame: connected pieces (>= :data:`MIN_OBJECT_PX` pixels) above Otsu's
    threshold of the frame smoothed by :data:`OTSU_SIGMA`, as a label image; None when there is none."""
    from skimage.filters import threshold_otsu

    smooth = ndimage.gaussian_filter(np.asarray(frame, np.float64), OTSU_SIGMA)
    if not np.isfinite(smooth).all() or smooth.max() <= smooth.min():
        return None
    objects, n = ndimage.label(smooth > threshold_otsu(smooth))
    if n == 0:
        return None
    sizes = np.bincount(objects.ravel())
    objects[sizes[objects] < MIN_OBJECT_PX] = 0
    return objects if objects.any() else None


def object_diameter(frame: np.ndarray) -> float | None:
    """Median equivalent-disc diameter (pixels) of :func:`bright_objects`: a size measure that needs no model,
    so it does not share a model's habit of cutting cells larger than its training cells into pieces of the
    training size. Touching cells count as one object, which the same measure on the training frames shares."""
    objects = bright_objects(frame)
    return None if objects is None else median_diameter(objects)


def estimate_snr(frame: np.ndarray) -> tuple[float | None, float | None]:
    """``(median body SNR, background noise)`` of one frame without a model: the SNR of :func:`bright_objects`
    measured on the raw frame (:func:`ctc.conditions.body_snr`). None when the frame holds no object."""
    raw = np.asarray(frame, np.float64)
    objects = bright_objects(raw)
    if objects is None:
        return None, None
    snr = body_snr(raw, objects)
    return float(np.median(snr)), background_stats(raw, objects)[1]


def choose_sigma(frame: np.ndarray, snr: float, model_snr: float) -> float:
    """Auto Gaussian sigma (input pixels) for a frame of estimated SNR ``snr``: 0 within the dead band
    (``model_snr / snr`` at most :data:`SNR_DEAD_BAND`), else the smallest of :data:`SIGMA_LADDER` after which
    :func:`estimate_snr` of the smoothed frame reaches ``SNR_TARGET * model_snr``; when none does, the one
    that brings it highest. The target was calibrated on degraded held-out frames (docs/appearance.md)."""
    if not model_snr / snr > SNR_DEAD_BAND:
        return 0.0
    raw = np.asarray(frame, _work_dtype(frame))
    reached: dict[float, float] = {}
    for sigma in SIGMA_LADDER:
        reached[sigma] = estimate_snr(ndimage.gaussian_filter(raw, sigma))[0] or 0.0
        if reached[sigma] >= SNR_TARGET * model_snr:
            return sigma
    return max(reached, key=lambda s: reached[s])


FirstPass = Callable[[np.ndarray], np.ndarray]


def median_diameter(labels: np.ndarray) -> float | None:
    diameters = cell_diameters(labels)
    return float(np.median(diameters)) if diameters.size >= MIN_INSTANCES else None


def first_pass_diameter(frames: Iterable[np.ndarray], first_pass: FirstPass) -> float | None:
    """Median diameter of the model's instances over ``frames`` (pooled): the record's ``diameter_estimate``."""
    diameters = np.concatenate([cell_diameters(first_pass(np.asarray(f))) for f in frames] or [np.zeros(0)])
    return round(float(np.median(diameters)), 2) if diameters.size >= MIN_INSTANCES else None


def estimate_scale(frame: np.ndarray, model_diameter: float,
                   first_pass: FirstPass) -> tuple[float, float | None, int, str]:
    """``(scale, sequence diameter in input pixels, passes, note)``: the scale among those tried whose instances'
    median diameter at model scale is nearest ``model_diameter`` (module doc); 1 when nothing is found.

    A magnification is kept only if the magnified frame holds about as many instances as the frame at scale 1
    (at most :data:`MAGNIFY_COUNT_LIMIT` times): small whole cells keep their number when magnified, while a
    model that cuts larger cells into small pieces cuts them into more pieces still (``note`` says so).
    """
    seen: dict[float, float | None] = {}
    counts: dict[float, int] = {}

    def diameter_at(scale: float) -> float | None:
        scale = float(min(max(scale, SCALE_LIMITS[0]), SCALE_LIMITS[1]))
        if scale not in seen:
            shaped = frame if scale == 1.0 else resample_frame(frame, scaled_shape(frame.shape, scale))
            labels = first_pass(shaped)
            seen[scale], counts[scale] = median_diameter(labels), int(np.unique(labels[labels > 0]).size)
        return seen[scale]

    d1 = diameter_at(1.0)
    if d1 is not None and _within(model_diameter / d1, SCALE_DEAD_BAND):
        return 1.0, d1, len(seen), ""
    guesses = list(SCALE_GRID) + ([model_diameter / d1] if d1 is not None else [])
    for scale in guesses:
        diameter_at(scale)
    best = _nearest(seen, model_diameter)
    if best is None:
        return 1.0, None, len(seen), ""
    diameter_at(best * model_diameter / seen[best])  # type: ignore[operator]  # one refinement step
    best = _nearest(seen, model_diameter)
    assert best is not None
    if best > 1.0 and counts[1.0] > 0 and counts[best] > MAGNIFY_COUNT_LIMIT * counts[1.0]:
        return 1.0, d1, len(seen), "more pieces when magnified"
    return best, seen[best] / best, len(seen), ""  # type: ignore[operator]


def _within(ratio: float, band: float) -> bool:
    return 1 / band <= ratio <= band


def _nearest(seen: Mapping[float, float | None], target: float) -> float | None:
    found = {s: d for s, d in seen.items() if d is not None}
    return min(found, key=lambda s: abs(math.log(found[s] / target))) if found else None


# ------------------------------------------------------------------------------------------ the plan


def plan(frame: np.ndarray, record: AppearanceRecord | None, cell_size: str | float, denoise: str | float,
         first_pass: FirstPass | None) -> Appearance:
    """Decide the stage for a sequence from its first raw frame (module doc). ``first_pass``: the model's
    instance labels of a frame (only called for ``cell_size="auto"``)."""
    frame = np.asarray(frame)
    out = Appearance(input_shape=tuple(frame.shape), model_diameter=record and record.cell_diameter,  # type: ignore
                     model_snr=record and record.snr_estimate)
    _plan_sigma(out, frame, record, denoise)
    smoothed = out.apply(frame) if out.sigma > 0 else frame
    _plan_scale(out, smoothed, record, cell_size, first_pass)
    if out.scale != 1.0:
        out.model_shape = scaled_shape(frame.shape, out.scale)
    return out


def _plan_sigma(out: Appearance, frame: np.ndarray, record: AppearanceRecord | None, denoise: str | float) -> None:
    if denoise == OFF:
        return
    if isinstance(denoise, str) and (record is None or record.snr_estimate is None):
        out.sigma_from = "no record"
        return
    out.snr, out.noise = estimate_snr(frame)
    if not isinstance(denoise, str):
        out.sigma, out.sigma_from = float(denoise), "override"
    elif out.snr is None or out.snr <= 0:
        out.sigma_from = "no estimate"
    else:
        out.sigma = choose_sigma(frame, out.snr, record.snr_estimate)
        out.sigma_from = AUTO if out.sigma > 0 else "dead band"


def _plan_scale(out: Appearance, frame: np.ndarray, record: AppearanceRecord | None, cell_size: str | float,
                first_pass: FirstPass | None) -> None:
    if cell_size == OFF:
        return
    if record is None:
        if not isinstance(cell_size, str):
            raise EmbedTrackError("cell_size: the model has no appearance record (its training cell diameter), so "
                                  "a cell size cannot be turned into a scale; record it with "
                                  "benchmarks/record_conditions.py or use cell_size='off'")
        out.scale_from = "no record"
        return
    if not isinstance(cell_size, str):
        out.cell_diameter, out.scale, out.scale_from = float(cell_size), record.cell_diameter / cell_size, "override"
        return
    if first_pass is None:
        out.scale_from = "no model"
        return
    target = record.diameter_estimate or record.cell_diameter
    scale, found, out.passes, note = estimate_scale(frame, target, first_pass)
    if found is None:
        out.scale_from = "no estimate"
        return
    if note:
        out.scale_from = note
    else:
        out.cell_diameter = record.cell_diameter * found / target  # the sequence's, in the record's terms
        inside = _within(scale, SCALE_DEAD_BAND)
        out.scale, out.scale_from = (1.0, "dead band") if inside else (scale, AUTO)
    if record.object_diameter:
        _check_objects(out, frame, record, target, first_pass)


def _check_objects(out: Appearance, frame: np.ndarray, record: AppearanceRecord, target: float,
                   first_pass: FirstPass) -> None:
    """Check the first-pass scale against the model-free :func:`object_diameter` (against the training frames').

    A model cuts cells larger than its own into pieces of its training size (a first pass that reads as the dead
    band) or into smaller pieces still (one that asks to magnify larger cells). When the objects are larger by
    more than the dead band and the first pass did not shrink the frame, the frame is tried at the scale the
    objects imply: if the model finds cells of its own size there, that scale is taken; if not, a magnification
    the first pass asked for is dropped (estimates disagree: nothing resampled). Objects smaller than the
    training frames' are not used: on real frames they are as often faint specks or noise (GOWT1's held-out
    frames: 10.7 px against 51 px) as smaller cells, and a first pass sees smaller cells whole.
    """
    found = object_diameter(frame)
    if found is None:
        return
    ratio = found / record.object_diameter  # type: ignore[operator]
    if ratio < SCALE_DEAD_BAND or out.scale < 1.0:
        return  # no larger cells seen (smaller objects are as often faint specks or noise), or shrunk already
    scale = float(min(max(1.0 / ratio, SCALE_LIMITS[0]), SCALE_LIMITS[1]))
    out.passes += 1
    diameter = median_diameter(first_pass(resample_frame(frame, scaled_shape(frame.shape, scale))))
    if diameter is not None and _within(diameter / target, SCALE_DEAD_BAND):
        out.scale, out.scale_from = scale, "auto (objects)"
        out.cell_diameter = record.cell_diameter / scale
    elif out.scale != 1.0:
        out.scale, out.scale_from = 1.0, "estimates disagree"
