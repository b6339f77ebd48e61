"""Size limits checked before memory or disk is committed: a tiny file must not claim gigabytes.

* ``EMBEDTRACK_MAX_PIXELS`` (default 2**27 = 134,217,728, e.g. 11,585 x 11,585): the most pixels a TIFF frame
  may declare, and the most pixels its decoder may write (a frame is decoded tile by tile or strip by strip; a
  header declaring tiles far larger than the frame would otherwise cost gigabytes). The header is read first, so
  such a file is refused before any pixel buffer is allocated.
* frames: at most :data:`MAX_FRAMES` per time-lapse (CTC frame numbers have at most 4 digits), each at least
  :data:`MIN_SIDE` pixels high and wide; a zarr chunk is capped like a TIFF tile (the pixels decoded to read one
  frame).
* ``EMBEDTRACK_MAX_UNPACKED_GB`` (default 64): the most a downloaded zip may unpack to (its members' declared
  sizes, checked before extraction; ``embedtrack download --max-unpacked-gb`` overrides it).
"""

from __future__ import annotations

import math
import os

from ctc.errors import CTCError, CTCFormatError

MAX_PIXELS_ENV = "EMBEDTRACK_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 2**27
MAX_UNPACKED_ENV = "EMBEDTRACK_MAX_UNPACKED_GB"
DEFAULT_MAX_UNPACKED_GB = 64.0
MAX_FRAMES = 10_000  # frame numbers 0..9999, the 4 digits of CTC names (ctc.trackfile.MAX_FRAME)
MIN_SIDE = 2  # a frame of one row or column (or none) is no 2-D image


def env_limit(name: str, default: float) -> float:
    """A positive number from environment variable ``name``, else ``default``; anything else is one error."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise CTCFormatError(f"environment variable {name}={text!r}: expected a positive number")
    return value


def max_pixels() -> int:
    """The most pixels one frame may have (``EMBEDTRACK_MAX_PIXELS``, a whole number)."""
    value = env_limit(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS)
    if value != int(value):
        raise CTCFormatError(f"environment variable {MAX_PIXELS_ENV}={os.environ[MAX_PIXELS_ENV].strip()!r}: "
                             "expected a whole number of pixels")
    return int(value)


def check_pixel_count(shape: tuple[int, ...], path: object) -> None:
    """Refuse a frame whose declared ``shape`` has more pixels than :func:`max_pixels`."""
    count = math.prod(int(s) for s in shape)
    limit = max_pixels()
    if count > limit:
        raise CTCFormatError(f"{path}: declares an image of {' x '.join(str(s) for s in shape)} = {count:,} pixels, "
                             f"more than the limit of {limit:,}; if the file is genuine, raise the limit with "
                             f"{MAX_PIXELS_ENV}={count}")


def check_frame_count(count: int, path: object) -> None:
    """Refuse a time-lapse of more than :data:`MAX_FRAMES` frames (before any per-frame list is made)."""
    if count > MAX_FRAMES:
        raise CTCFormatError(f"{path}: {count:,} frames, more than the {MAX_FRAMES:,} that CTC frame numbers "
                             "(4 digits) allow; split the time-lapse")


def check_frame_shape(shape: tuple[int, ...], path: object) -> None:
    """Refuse a frame that is not 2-D, has fewer than :data:`MIN_SIDE` pixels on a side, or more pixels than
    :func:`max_pixels` (only its shape is looked at: nothing is decoded or materialised)."""
    if len(shape) != 2:
        raise CTCFormatError(f"{path}: a frame of shape {tuple(shape)}, expected a 2-D image")
    if min(shape) < MIN_SIDE:
        raise CTCFormatError(f"{path}: frames of {shape[0]} x {shape[1]} pixels; a frame needs at least {MIN_SIDE} "
                             "pixels on each side")
    check_pixel_count(shape, path)


def check_decoded_pixels(count: int, chunk: tuple[int, ...], kind: str, path: object) -> None:
    """Refuse a page whose ``kind`` (tiles or strips; ``chunk`` is the shape of one) would decode ``count``
    pixels in all, more than :func:`max_pixels`."""
    limit = max_pixels()
    if count > limit:
        raise CTCFormatError(f"{path}: its {kind} of {' x '.join(str(int(s)) for s in chunk)} pixels would "
                             f"decode {count:,} pixels, more than the limit of {limit:,}; if the file is genuine, "
                             f"raise the limit with {MAX_PIXELS_ENV}={count}")


def check_size_option(shape: tuple[int, int], option: str) -> None:
    """Refuse a frame size given on the command line (``option``) with more pixels than :func:`max_pixels`."""
    count = math.prod(int(s) for s in shape)
    limit = max_pixels()
    if count > limit:
        raise CTCError(f"{option} {' '.join(str(s) for s in shape)}: {count:,} pixels per frame, more than the "
                       f"limit of {limit:,}; choose a smaller size or raise the limit with {MAX_PIXELS_ENV}={count}")


def memory_bytes() -> int | None:
    """The machine's physical memory in bytes, or None where the system does not tell."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError):
        return None
