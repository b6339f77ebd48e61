"""Progress bars for every command: one place that ``-q`` turns off.

``progress(iterable, **tqdm_options)`` is :class:`tqdm.tqdm` unless :data:`QUIET` is set (``embedtrack -q …`` sets
it for the command it runs); log records are written above the bar by the command's logging redirect
(``tqdm.contrib.logging``), so warnings do not break it.
"""

from __future__ import annotations

from typing import Any

from tqdm import tqdm

QUIET = False


def progress(iterable: Any = None, **options: Any) -> tqdm:
    """A tqdm progress bar, disabled when :data:`QUIET` is set."""
    disable = options.pop("disable", False)
    return tqdm(iterable, disable=True if QUIET else disable, **options)
