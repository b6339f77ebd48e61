"""Streaming a sequence through a :class:`~embedtrack.inference.tracker.Tracker`, one frame at a time.

:class:`TrackStream` takes frames (and masks) from their iterables, checks them (:func:`_check_frame`), decides
the appearance stage on the first frame (:mod:`embedtrack.inference.appearance`) and prepares each frame in one
background thread, one frame ahead (:class:`~embedtrack.inference.background.ReadAhead`), while the tracker's
stages from prediction on run in the calling thread, in frame order; label images come back at the input shape.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any, Generator, Iterable, Iterator, TypeVar

import numpy as np

from ctc.lineage import Track
from embedtrack.errors import EmbedTrackError
from embedtrack.inference.appearance import Appearance, check_setting
from embedtrack.inference.background import ReadAhead
from embedtrack.inference.lineage import LineageStage
from embedtrack.inference.results import FrameInput, FrameResult

T = TypeVar("T")


class TrackStream:
    """Iterable of :class:`FrameResult`, one per frame as it is tracked; :meth:`tracks` gives the lineage so
    far (complete once the iteration has ended).

    With ``prefetch`` the frames (and masks) are taken from their iterables, checked and normalised in one
    background thread, one frame ahead. The thread ends with the iteration; :meth:`close` (or leaving a ``with``
    block) ends it when the iteration is abandoned, e.g. on an error in the loop that consumes the stream.
    """

    def __init__(self, tracker: Any, frames: Iterable[Any], masks: Iterable[Any] | None, first_index: int,
                 prefetch: bool = True, cell_size: str | float = "auto", denoise: str | float = "auto") -> None:
        self.tracker = tracker  # the Tracker (not imported here: tracker.py imports this module)
        self.frames = frames
        self.masks = masks
        self.first_index = first_index
        self.prefetch = prefetch
        self.cell_size = check_setting(cell_size, "cell_size")
        self.denoise = check_setting(denoise, "denoise")
        #: what the appearance stage estimated and applied (set when the first frame has been read)
        self.appearance: Appearance | None = None
        self._work = tracker  # the tracker at model scale (:meth:`Tracker.at_scale`), once the stage is decided
        self.lineage = LineageStage(tracker.config, editable=masks is None or tracker.config.edit_given_masks)
        self._active: Generator[FrameResult, None, None] | None = None

    def tracks(self) -> list[Track]:
        return self.lineage.tracks()

    def __iter__(self) -> Iterator[FrameResult]:
        self._active = self._results()
        return self._active

    def close(self) -> None:
        """Stop the iteration: the reading thread is joined, the frame iterables' generators closed."""
        if self._active is not None:
            self._active.close()

    def __enter__(self) -> TrackStream:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _inputs(self) -> Generator[FrameInput, None, None]:
        """Frames (and masks) checked and prepared for the network, in order. The appearance stage is decided
        on the first frame (:meth:`Tracker.plan_appearance`, in the reading thread too) before it is prepared:
        :attr:`appearance` and the tracker to run at model scale are set before the first item is yielded."""
        shape: tuple[int, ...] | None = None
        for i, (seconds, (frame, mask)) in enumerate(_timed(_pairs(self.frames, self.masks))):
            t = self.first_index + i
            frame = _check_frame(frame, t, shape)
            shape = frame.shape
            declared = getattr(mask, "shape", None)
            if declared is not None and tuple(declared) != shape:  # before a lazy mask is materialised
                raise EmbedTrackError(f"mask {t}: shape {tuple(declared)} differs from the frame's {shape}")
            if i == 0:
                tic = time.perf_counter()
                self.appearance = self.tracker.plan_appearance(frame, self.cell_size, self.denoise,
                                                               self.masks is not None)
                self._work = self.tracker.at_scale(self.appearance)
                seconds += time.perf_counter() - tic
            item = self._work.prepare(frame, t, mask, self.appearance)
            item.seconds["read"] = seconds
            yield item

    def _results(self) -> Generator[FrameResult, None, None]:
        self.tracker.reset()
        inputs: ReadAhead[FrameInput] | Generator[FrameInput, None, None]
        inputs = ReadAhead(self._inputs()) if self.prefetch else self._inputs()
        prev: np.ndarray | None = None
        try:
            for item in inputs:
                tracker, appearance = self._work, self.appearance  # set before the first item came
                result = tracker.track_input(item, prev)
                prev = result.instances
                tic = time.perf_counter()
                done = self.lineage.push(result)
                result.seconds["link"] += time.perf_counter() - tic
                yield from (_restored(r, appearance) for r in done)
            yield from (_restored(r, self.appearance) for r in self.lineage.flush())
        finally:
            inputs.close()


def _restored(result: FrameResult, appearance: Appearance | None) -> FrameResult:
    """A frame tracked at model scale with its label images back at the input shape (its ``shifted`` targets
    are dropped: they are model-scale coordinates)."""
    if appearance is None or not appearance.resamples:
        return result
    instances = appearance.restore(result.instances)  # a new result: the lineage stage may still hold this one
    labels = instances if result.labels is result.instances else appearance.restore(result.labels)
    return replace(result, instances=instances, labels=labels, shifted=None)


_END = object()


def _timed(items: Iterable[T]) -> Iterator[tuple[float, T]]:
    """Each item with the seconds it took the iterable to produce it."""
    iterator = iter(items)
    while True:
        tic = time.perf_counter()
        item = next(iterator, _END)
        if item is _END:
            return
        yield time.perf_counter() - tic, item  # type: ignore[misc]


def _pairs(frames: Iterable[Any], masks: Iterable[Any] | None) -> Iterator[tuple[Any, Any]]:
    """``(frame, mask)`` pairs; one clear error when there are more frames than masks or the other way round."""
    if masks is None:
        for frame in frames:
            yield frame, None
        return
    frame_it, mask_it = iter(frames), iter(masks)
    n = 0
    while True:
        frame, mask = next(frame_it, _END), next(mask_it, _END)
        if frame is _END and mask is _END:
            return
        if frame is _END or mask is _END:
            more = "masks" if frame is _END else "frames"
            raise EmbedTrackError(f"masks: the number of masks does not match the number of frames (more {more} "
                                  f"than the {n} paired)")
        n += 1
        yield frame, mask


def _check_frame(frame: Any, t: int, shape: tuple[int, ...] | None) -> np.ndarray:
    from ctc.frames import check_frame_array

    frame = check_frame_array(frame, f"frame {t}")  # size and pixel limit checked before it is materialised
    if frame.ndim != 2:
        raise EmbedTrackError(f"frame {t}: expected a 2-D array, got shape {frame.shape}")
    if not (np.issubdtype(frame.dtype, np.number) or frame.dtype == bool):
        raise EmbedTrackError(f"frame {t}: expected numbers, got dtype {frame.dtype}")
    if shape is not None and frame.shape != shape:
        raise EmbedTrackError(f"frame {t}: shape {frame.shape} differs from the first frame's {shape}")
    return frame
