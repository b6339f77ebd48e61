"""Progress bars for every command: one place that ``-q`` turns off, and where a requested stop is noticed.

``progress(iterable, **tqdm_options)`` is :class:`tqdm.tqdm` unless :data:`QUIET` is set (``embedtrack -q …`` sets
it for the command it runs); log records are written above the bar by the command's logging redirect
(``tqdm.contrib.logging``), so warnings do not break it.

A stop signal (see :mod:`embedtrack.cli`) raises :class:`KeyboardInterrupt` wherever the program is, and then
:func:`request_stop` makes every later step of a bar raise it again: an interrupt that library code swallowed
(one raised inside a ``__del__`` or a C callback) still ends the command at its next frame or epoch.
"""

from __future__ import annotations

from typing import Any, Iterator

from tqdm import tqdm

QUIET = False
STOP: str | None = None  # why the command must stop (a signal arrived), or None


def request_stop(reason: str | None) -> None:
    """Make every later step of a progress bar raise :class:`KeyboardInterrupt` (None: no longer)."""
    global STOP
    STOP = reason


def check_stop() -> None:
    """Raise :class:`KeyboardInterrupt` when a stop was requested."""
    if STOP is not None:
        raise KeyboardInterrupt(STOP)


class _Bar(tqdm):  # type: ignore[type-arg]
    """tqdm that checks for a requested stop after every item and update."""

    def __iter__(self) -> Iterator[Any]:
        for item in super().__iter__():
            yield item
            check_stop()

    def update(self, n: float | None = 1) -> bool | None:
        check_stop()
        return super().update(n)


def progress(iterable: Any = None, **options: Any) -> tqdm:
    """A tqdm progress bar, disabled when :data:`QUIET` is set."""
    disable = options.pop("disable", False)
    return _Bar(iterable, disable=True if QUIET else disable, **options)
