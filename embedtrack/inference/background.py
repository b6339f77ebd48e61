"""Reading ahead and writing behind in one background thread each, so the network never waits for file I/O.

* :class:`ReadAhead` runs an iterator in a thread, at most ``depth`` items ahead of the consumer (the tracker
  reads, checks and normalises frame t+1 while frame t is predicted);
* :class:`WriteBehind` runs calls in a thread in the order they were submitted, at most ``depth`` of them
  waiting (``run`` writes the mask of frame t while frame t+1 is computed).

Both keep memory bounded (bounded queues), hand an exception raised in their thread to the calling thread once,
as the same exception object, and join their thread when closed - after the last item, on an error and on
Ctrl-C alike - so that no thread outlives the run. Only the calling thread touches the network: a predictor
that keeps state between frames (feature reuse) sees the frames in order, as without the threads.
"""

from __future__ import annotations

import queue
import threading
import time
from functools import partial
from types import TracebackType
from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

__all__ = ["ReadAhead", "WriteBehind"]

T = TypeVar("T")

POLL_SECONDS = 0.1  # how often a blocked producer looks whether it was told to stop
_DONE = object()


class _Failed:
    """An exception raised in the producer thread, queued after the items produced before it."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class ReadAhead(Generic[T]):
    """The items of ``items``, produced in one background thread at most ``depth`` items ahead.

    An exception raised while producing is raised by :meth:`__next__` once the items before it have been
    consumed, and the iteration ends there. :meth:`close` (also on leaving a ``with`` block) stops the thread
    after the item it is producing, closes the source iterator and joins the thread.
    """

    def __init__(self, items: Iterable[T], depth: int = 1, name: str = "embedtrack-read") -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._closed = False
        self._thread = threading.Thread(target=self._produce, args=(items,), name=name, daemon=True)
        self._thread.start()

    def _produce(self, items: Iterable[T]) -> None:
        source = iter(items)
        try:
            for item in source:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as error:  # handed to the consumer, raised there
            self._put(_Failed(error))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()  # a generator's own clean-up runs here, in this thread

    def _put(self, item: Any) -> bool:
        """Queue ``item``, waiting for room; False (and nothing queued) once told to stop."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_SECONDS)
            except queue.Full:
                continue
            return not self._stop.is_set()
        return False

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._closed:
            raise StopIteration
        item = self._queue.get()
        if item is _DONE:
            self.close()
            raise StopIteration
        if isinstance(item, _Failed):
            self.close()
            raise item.error
        return item  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop producing and wait for the thread to end (it finishes the item at hand first)."""
        self._closed = True
        self._stop.set()
        _drain(self._queue)
        self._thread.join()

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _drain(pending: queue.Queue[Any]) -> None:
    """Empty a queue without waiting (wakes a producer blocked on a full queue)."""
    while True:
        try:
            pending.get_nowait()
        except queue.Empty:
            return


class WriteBehind:
    """Calls run in one background thread in submission order, at most ``depth`` waiting to run.

    ``threaded=False`` runs each call at once in the calling thread instead (the same interface, no overlap).
    The first exception a call raises is raised by the next :meth:`submit` or :meth:`wait` (the calls after it
    are skipped); :meth:`close` (also on leaving a ``with`` block) joins the thread, skipping waiting calls when
    an exception is on its way out, and raises an exception nobody has seen yet. :attr:`busy_seconds` adds up
    the time spent in the calls.
    """

    def __init__(self, depth: int = 1, threaded: bool = True, name: str = "embedtrack-write") -> None:
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self.busy_seconds = 0.0
        self._error: BaseException | None = None
        self._raised = False
        self._cancel = threading.Event()
        self._queue: queue.Queue[Callable[[], Any] | None] = queue.Queue(maxsize=depth)
        self._thread: threading.Thread | None = None
        if threaded:
            self._thread = threading.Thread(target=self._work, name=name, daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            call = self._queue.get()
            try:
                if call is None:
                    return
                if self._error is None and not self._cancel.is_set():
                    self._run(call)
            finally:
                self._queue.task_done()

    def _run(self, call: Callable[[], Any]) -> None:
        tic = time.perf_counter()
        try:
            call()
        except BaseException as error:  # raised in the submitting thread by submit/wait/close
            self._error = error
        finally:
            self.busy_seconds += time.perf_counter() - tic

    def submit(self, func: Callable[..., Any], *args: Any) -> None:
        """Run ``func(*args)`` after the calls submitted before; waits while ``depth`` calls are waiting."""
        self._raise_error()
        if self._thread is None:
            self._run(partial(func, *args))
            self._raise_error()
        else:
            self._queue.put(partial(func, *args))

    def wait(self) -> None:
        """Return once every submitted call has run; raises the first exception one of them raised."""
        if self._thread is not None:
            self._queue.join()
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            self._raised = True
            raise self._error

    def close(self, cancel: bool = False) -> None:
        """Join the thread after the waiting calls have run (skipped if ``cancel``); raises an exception of a
        call that was not raised yet, unless ``cancel``."""
        if self._thread is not None:
            if cancel:
                self._cancel.set()
            self._queue.put(None)
            self._thread.join()
            self._thread = None
        if not cancel and not self._raised:
            self._raise_error()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(cancel=exc_type is not None)
