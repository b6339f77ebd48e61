"""The in-memory tracker: 2-D arrays in, instance labels, links and a lineage out; no disk (paper §3.3–3.4, §4.4).

One frame goes normalise -> predict -> cluster (§3.3) -> post-process (field-of-interest border) -> link (§3.4)
-> lineage (:mod:`embedtrack.inference.lineage`: corrections over a few frames, then CTC track ids). Before the first
frame, the appearance stage (:mod:`embedtrack.inference.appearance`) measures the sequence's cell size and noise against
the conditions the model was trained at and, when they differ clearly, smooths and resamples every frame so the
network sees cells of its training size and noise; everything from the network to the lineage then runs at model
scale and the label images come back at the input shape (``cell_size``/``denoise``: ``"auto"``, ``"off"`` or a
number; off/off is the pipeline without the stage). Every driver
(``embedtrack run``, training validation, the classical baseline, the benchmarks) is a thin layer over
:class:`Tracker`; the stages are pluggable:

* ``predictor``: a callable ``normalised frame -> Predictions`` with ``reset()`` (the network's
  :class:`~embedtrack.inference.predict.Predictor`, or a stub in tests);
* ``segmenter``: a callable ``raw frame -> labels`` used instead of clustering (e.g. a classical pipeline);
* ``linker``: a callable ``(labels_t, labels_prev, predictions) -> {label_t: label_prev}`` used instead of the
  tracking-offset linking;
* ``masks``: instance masks the user already has, kept as they are and linked with the tracking offsets.

Only the previous frame's labels and the lineage stage's window of a few frames are kept while streaming
(:meth:`Tracker.iter_track`); :meth:`Tracker.track` collects a :class:`TrackResult` that writes a CTC result
(:meth:`TrackResult.write_ctc`) or converts to napari layers (:meth:`TrackResult.to_napari`). While streaming, the next frame is taken from the iterable (read, for a
lazy sequence), checked and normalised in one background thread while the current one is predicted
(:class:`~embedtrack.inference.background.ReadAhead`, ``prefetch=False`` turns it off); the stages from prediction on
run in the calling thread, in frame order.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import numpy as np

from embedtrack.inference.appearance import OFF, Appearance, AppearanceRecord, check_setting, plan
from embedtrack.inference.cluster import cluster
from embedtrack.inference.preprocess import normalise
from embedtrack.errors import EmbedTrackError
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.inference.instances import whole_cells
from embedtrack.inference.link import link, shifted_targets
from embedtrack.models.predictions import Predictions
from embedtrack.inference.results import FrameInput, FrameResult, TrackResult
from embedtrack.inference.stream import TrackStream

logger = logging.getLogger(__name__)

__all__ = ["Tracker", "TrackResult", "FrameInput", "FrameResult", "TrackStream", "remove_border_instances",
           "relabel_mask"]

#: Stages timed per frame (seconds), in order; ``read`` is the time taken to get the frame (and mask) from the
#: iterables while streaming (reading the file for a lazy sequence), 0 for :meth:`Tracker.step`.
TRACKER_STAGES = ("read", "normalise", "predict", "cluster", "link")


Segmenter = Callable[[np.ndarray], np.ndarray]
Linker = Callable[[np.ndarray, np.ndarray, "Predictions | None"], dict[int, int]]


class Predict(Protocol):
    """What the tracker needs from a predictor: the normalised frames of one sequence in order (an optional
    ``reset()`` is called before each sequence)."""

    def __call__(self, frame: np.ndarray) -> Predictions: ...


def remove_border_instances(labels: np.ndarray, border: int) -> np.ndarray:
    """Drop instances lying entirely within ``border`` pixels of the frame edge (outside the field of interest)."""
    if border <= 0:
        return labels
    inner = np.zeros(labels.shape, dtype=bool)
    inner[border:-border or None, border:-border or None] = True
    keep = np.zeros(int(labels.max()) + 1, dtype=bool)
    keep[np.unique(labels[inner])] = True
    keep[0] = False
    return np.where(keep[labels], labels, 0)


def relabel_mask(mask: Any, where: str) -> np.ndarray:
    """A user's instance mask relabelled densely ``1..n`` (int32, 0 stays background); ``where`` names it in
    errors (non-integer dtype, negative labels, not 2-D)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise EmbedTrackError(f"{where}: a mask must be 2-D, got shape {mask.shape}")
    if not np.issubdtype(mask.dtype, np.integer):
        raise EmbedTrackError(f"{where}: a mask must hold integer labels, got dtype {mask.dtype}")
    values, inverse = np.unique(mask, return_inverse=True)
    if values.size and values[0] < 0:
        raise EmbedTrackError(f"{where}: a mask must not hold negative labels")
    offset = 0 if values.size and values[0] == 0 else 1
    return (inverse.reshape(mask.shape) + offset).astype(np.int32)


class Tracker:
    """Segment and track a sequence of 2-D frames in memory (see the module docstring).

    Build one with :meth:`from_model` for a trained model, or directly from stages::

        Tracker(config, predictor=...)                       # the network's predictions
        Tracker(config, segmenter=..., linker=...)           # any frame -> labels segmenter and linker
    """

    def __init__(self, config: InferenceConfig | None = None, predictor: Predict | None = None,
                 segmenter: Segmenter | None = None, linker: Linker | None = None,
                 conditions: AppearanceRecord | None = None) -> None:
        self.config = config or InferenceConfig()
        self.predictor = predictor
        self.segmenter = segmenter
        self.linker = linker
        #: the conditions the model was trained at (its config.json ``appearance``), for the appearance stage
        self.conditions = conditions
        self.info: dict[str, Any] = {}  # model name, device, TTA: for reports
        self._said_no_record = False

    @classmethod
    def from_model(cls, name_or_folder: str | Path, device: str = "auto", tta: bool | None = None,
                   batch_size: int = 4, precision: str = "auto", compile: bool = False, **overrides: Any) -> Tracker:
        """A tracker for a bundled model name or model folder; ``overrides`` change :class:`InferenceConfig`
        values of the model (e.g. ``seed_threshold=0.6``). ``tta`` None: on with CUDA, off on the CPU.
        ``precision``: ``auto``, ``fp32`` or ``bf16``; ``compile``: ``torch.compile`` the network (see
        :mod:`embedtrack.inference.predict`)."""
        from embedtrack.models.device import pick_device, use_all_cores
        from embedtrack.inference.predict import Predictor
        from embedtrack.models.registry import load_model

        if tta is not None and not isinstance(tta, bool):
            raise EmbedTrackError(f"tta must be True, False or None (automatic), got {tta!r}")
        torch_device = pick_device(device)
        use_tta = tta if tta is not None else torch_device.type == "cuda"
        if torch_device.type == "cpu":
            use_all_cores()
        net, model_config = load_model(name_or_folder, torch_device)
        config = model_config.inference.replace(**overrides)
        predictor = Predictor(net, model_config.tile_size, torch_device, tta=use_tta, batch_size=batch_size,
                              precision=precision, compile=compile)
        tracker = cls(config, predictor=predictor, conditions=model_config.appearance)
        tracker.info = {"model": model_config.name, "device": torch_device.type, "tta": use_tta,
                        "precision": predictor.precision, "compile": predictor.compiled}
        return tracker

    def with_overrides(self, **overrides: Any) -> Tracker:
        """A tracker sharing these stages with some :class:`InferenceConfig` values changed (None: unchanged)."""
        other = Tracker(self.config.replace(**overrides), self.predictor, self.segmenter, self.linker,
                        self.conditions)
        other.info = dict(self.info)
        other._said_no_record = self._said_no_record
        return other

    # ------------------------------------------------------------------------------------------ appearance

    def plan_appearance(self, frame: np.ndarray, cell_size: str | float = "auto", denoise: str | float = "auto",
                        masks_given: bool = False) -> Appearance:
        """Decide the appearance stage of a sequence from its first raw frame (:mod:`embedtrack.inference.appearance`),
        logged in one line; with given masks the frames stay as they are (the masks are at input scale)."""
        cell_size, denoise = check_setting(cell_size, "cell_size"), check_setting(denoise, "denoise")
        if masks_given:
            stage = Appearance(input_shape=tuple(frame.shape), scale_from="masks given",  # type: ignore[arg-type]
                               sigma_from="masks given")
        else:
            stage = plan(frame, self.conditions, cell_size, denoise, self.first_pass if self.predictor is not None
                         or self.segmenter is not None else None)
            self.reset()  # the first passes left the predictor's previous frame behind
        if self.conditions is None and "auto" in (cell_size, denoise) and not masks_given:
            if not self._said_no_record:
                logger.info("appearance: model %s has no appearance record in its config.json; 'auto' leaves the "
                            "frames as they are", self.info.get("model", "(no name)"))
                self._said_no_record = True
        elif (cell_size, denoise) != (OFF, OFF):
            logger.info(stage.summary())
        return stage

    def first_pass(self, frame: np.ndarray) -> np.ndarray:
        """Instance labels of one raw frame on its own (no previous frame), for the appearance estimate."""
        self.reset()
        if self.segmenter is not None:
            return self.postprocess(self.segmenter(frame))
        return self.segment(self.predict(normalise(frame, self.config.norm_low, self.config.norm_high)))

    def at_scale(self, appearance: Appearance | None) -> Tracker:
        """This tracker, or one whose field-of-interest border is in model pixels when frames are resampled
        (every other length of :class:`InferenceConfig` is in model pixels already)."""
        if appearance is None or not appearance.resamples or not self.config.fov_border:
            return self
        return self.with_overrides(fov_border=int(round(self.config.fov_border * appearance.scale)))

    # ------------------------------------------------------------------------------------------ stages

    def reset(self) -> None:
        """Forget the previous frame (called at the start of every sequence). A predictor without ``reset``
        only costs one unused tracking pass on the first frame of a later sequence (it has no predecessor)."""
        reset = getattr(self.predictor, "reset", None)
        if reset is not None:
            reset()

    def predict(self, frame: np.ndarray) -> Predictions:
        """Normalised frame -> predictions."""
        if self.predictor is None:
            raise EmbedTrackError("this tracker has no predictor")
        return self.predictor(frame)

    def segment(self, pred: Predictions) -> np.ndarray:
        """Predictions -> instance labels: clustering (§3.3), then :meth:`postprocess`."""
        return self.postprocess(cluster(pred, self.config))

    def postprocess(self, labels: np.ndarray) -> np.ndarray:
        """The one place where clustered (or segmenter) labels are cleaned up before linking: whole cells (one
        connected piece each, holes filled), then the field-of-interest border."""
        if self.config.whole_cells:
            labels = whole_cells(labels)
        return remove_border_instances(labels, self.config.fov_border)

    def link(self, labels: np.ndarray, prev: np.ndarray | None, pred: Predictions | None,
             shifted: tuple[np.ndarray, np.ndarray] | None = None) -> dict[int, int]:
        """``{label at t: label at t-1}`` (§3.4, or the plugged-in linker); empty for the first frame.
        ``shifted``: :meth:`shift` of these labels when already computed."""
        if prev is None:
            return {}
        if self.linker is not None:
            return self.linker(labels, prev, pred)
        if pred is None or pred.track_offsets is None:
            return {}
        return link(labels, pred.track_offsets, prev, self.config, shifted)

    def shift(self, labels: np.ndarray, prev: np.ndarray | None,
              pred: Predictions | None) -> tuple[np.ndarray, np.ndarray] | None:
        """Where the instance pixels' tracking offsets land at t-1 (None for the first frame or without
        offsets): what the lineage stage uses beyond the links."""
        if prev is None or pred is None or pred.track_offsets is None:
            return None
        if tuple(pred.track_offsets.shape) != (2, *labels.shape):
            raise EmbedTrackError(f"link: track_offsets must have shape {(2, *labels.shape)}, "
                                  f"got {tuple(pred.track_offsets.shape)}")
        return shifted_targets(labels, pred.track_offsets, self.config.coord_scale)

    def prepare(self, frame: np.ndarray, t: int, mask: Any = None, appearance: Appearance | None = None
                ) -> FrameInput:
        """Frame ``t`` made ready for :meth:`track_input`: smoothed and resampled by the appearance stage when
        it is active, then normalised for the predictor (timed). While streaming this runs in the reading
        thread, ahead of the network."""
        sec = dict.fromkeys(TRACKER_STAGES, 0.0)
        tic = time.perf_counter()
        if appearance is not None and appearance.active:
            frame = appearance.apply(frame)
        norm = None if self.predictor is None else normalise(frame, self.config.norm_low, self.config.norm_high)
        sec["normalise"] = time.perf_counter() - tic
        return FrameInput(t, frame, norm, mask, sec)

    def step(self, frame: np.ndarray, prev: np.ndarray | None, t: int, mask: Any = None) -> FrameResult:
        """Track one raw frame against the previous frame's instances (lineage not included)."""
        return self.track_input(self.prepare(frame, t, mask), prev)

    def track_input(self, item: FrameInput, prev: np.ndarray | None) -> FrameResult:
        """Track one prepared frame (:meth:`prepare`) against the previous frame's instances: predict,
        segment (or keep the given mask), link."""
        sec, frame, t = item.seconds, item.frame, item.t
        tic = time.perf_counter()
        pred: Predictions | None = None
        if item.norm is not None:
            pred = self.predict(item.norm)
            sec["predict"] = (toc := time.perf_counter()) - tic
            tic = toc
        if item.mask is not None:
            labels = relabel_mask(item.mask, f"mask {t}")
            if labels.shape != frame.shape:
                raise EmbedTrackError(f"mask {t}: shape {labels.shape} differs from the frame's {frame.shape}")
        elif self.segmenter is not None:
            labels = self.postprocess(self.segmenter(frame))
        elif pred is not None:
            labels = self.segment(pred)
        else:
            raise EmbedTrackError("this tracker has neither a predictor nor a segmenter")
        sec["cluster"] = (toc := time.perf_counter()) - tic
        shifted = self.shift(labels, prev, pred)
        links = self.link(labels, prev, pred, shifted)
        sec["link"] = time.perf_counter() - toc
        return FrameResult(t, labels, links, labels, sec, shifted)

    # ------------------------------------------------------------------------------------------ drivers

    def iter_track(self, frames: Iterable[Any] | str | os.PathLike[str],
                   masks: Iterable[Any] | str | os.PathLike[str] | None = None,
                   first_index: int | None = None, prefetch: bool = True, cell_size: str | float = "auto",
                   denoise: str | float = "auto") -> TrackStream:
        """Stream the frames: one :class:`FrameResult` per frame.

        ``frames``: any iterable of 2-D numeric arrays (a ``T×Y×X`` numpy or zarr array included), or a path: a
        CTC folder, a folder of 2-D TIFFs, a ``T×Y×X`` TIFF stack or zarr array (:func:`ctc.frames.open_frames`,
        read lazily). ``masks``: the user's instance masks (2-D integer arrays, one per frame, same shapes, or a
        path in any of the forms of ``frames``): they are kept (relabelled ``1..n`` per frame) and only linked. ``first_index``: the frame number of the first
        frame [default: that of a CTC folder, else 0]. ``prefetch``: take, check and normalise the next frame in
        a background thread while this one is predicted (the results are the same either way).

        ``cell_size``: ``"auto"`` (estimated on the first frame), ``"off"`` or the typical cell diameter in
        pixels of these frames; the frames are resampled by the model's training diameter / this (outside a
        ±20 % dead band for ``auto``). ``denoise``: ``"auto"`` (when the sequence's SNR is clearly below the
        model's training SNR), ``"off"`` or a Gaussian sigma in input pixels. What was estimated and applied is
        the stream's :attr:`TrackStream.appearance` (:mod:`embedtrack.inference.appearance`).
        """
        if masks is not None and self.predictor is None and self.linker is None:
            raise EmbedTrackError("linking given masks needs a predictor (tracking offsets) or a linker")
        from ctc.frames import array_frames, open_frames

        if isinstance(frames, (str, os.PathLike)):
            frames = open_frames(frames)
            first_index = frames.indices[0] if first_index is None else first_index
        else:
            frames = array_frames(frames)
        if isinstance(masks, (str, os.PathLike)):
            masks = open_frames(masks)  # read like frames, one at a time
        elif masks is not None:
            masks = array_frames(masks, "masks")
        first_index = 0 if first_index is None else first_index
        if isinstance(first_index, bool) or not isinstance(first_index, (int, np.integer)) or first_index < 0:
            raise EmbedTrackError(f"first_index must be a frame number >= 0, got {first_index!r}")
        return TrackStream(self, frames, masks, first_index, prefetch, cell_size, denoise)

    def track(self, frames: Iterable[Any] | str | os.PathLike[str],
              masks: Iterable[Any] | str | os.PathLike[str] | None = None, first_index: int | None = None,
              cell_size: str | float = "auto", denoise: str | float = "auto") -> TrackResult:
        """Track a whole sequence in memory; see :meth:`iter_track` (``frames`` may be a path; ``cell_size`` and
        ``denoise`` drive the appearance stage)."""
        stream = self.iter_track(frames, masks, first_index, cell_size=cell_size, denoise=denoise)
        labels: list[np.ndarray] = []
        links: list[dict[int, int]] = []
        for result in stream:
            labels.append(result.labels)
            links.append(result.links)
        return TrackResult(labels, links, stream.tracks(), stream.first_index, self.config, stream.appearance)
