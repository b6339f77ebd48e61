"""Pictures of a tracking result: frames with coloured outlines and track ids, a lineage tree, a streamed GIF.

Everything here works on arrays and file handles; reading CTC folders and naming files is done by
``embedtrack.cli.show``. A track keeps its colour everywhere (overlay frames and lineage tree): colour
``TRACK_COLORS[(label - 1) % 64]``, a fixed table whose neighbouring entries differ strongly in hue.
Frames are drawn with Pillow only (no plotting library).
"""

from __future__ import annotations

import colorsys
import functools
import io
import logging
from collections.abc import Iterable
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ctc.labels import label_stats
from ctc.lineage import Track, division_count
from ctc.wording import counted
from embedtrack.errors import EmbedTrackError

logger = logging.getLogger(__name__)

N_TRACK_COLORS = 64
N_GRAYS = 256 - N_TRACK_COLORS
_GOLDEN = 0.6180339887498949


def _track_colors() -> np.ndarray:
    """64 saturated colours; consecutive entries are a golden-ratio step apart in hue."""
    colors = []
    for k in range(N_TRACK_COLORS):
        sat, val = (0.9, 1.0) if k < N_TRACK_COLORS // 2 else (0.55, 0.95)
        r, g, b = colorsys.hsv_to_rgb((k * _GOLDEN + (k >= N_TRACK_COLORS // 2) * 0.25) % 1.0, sat, val)
        colors.append((round(r * 255), round(g * 255), round(b * 255)))
    return np.array(colors, dtype=np.uint8)


#: Colour of track ``label`` is ``TRACK_COLORS[(label - 1) % N_TRACK_COLORS]``.
TRACK_COLORS: np.ndarray = _track_colors()


def track_color(label: int) -> tuple[int, int, int]:
    """RGB colour of a track id, the same in every frame and picture."""
    r, g, b = TRACK_COLORS[(int(label) - 1) % N_TRACK_COLORS]
    return int(r), int(g), int(b)


def gif_palette() -> np.ndarray:
    """The 256-colour GIF palette (256, 3): 192 grey levels followed by the 64 track colours."""
    grays = np.linspace(0, 255, N_GRAYS).round().astype(np.uint8)
    return np.concatenate([np.repeat(grays[:, None], 3, axis=1), TRACK_COLORS])


def to_palette(rgb: np.ndarray) -> np.ndarray:
    """Palette indices (uint8) of an RGB frame: greys to the nearest grey level, colours to the nearest entry."""
    palette = gif_palette()
    r, g, b = (rgb[:, :, k] for k in range(3))
    index: np.ndarray = np.rint(r.astype(np.float32) * ((N_GRAYS - 1) / 255)).astype(np.uint8)
    colored = (r != g) | (g != b)
    if colored.any():
        colors, inverse = np.unique(rgb[colored], axis=0, return_inverse=True)
        dist = ((colors[:, None, :].astype(np.int32) - palette[None, :, :].astype(np.int32)) ** 2).sum(axis=2)
        index[colored] = dist.argmin(axis=1).astype(np.uint8)[inverse.ravel()]
    return index


@functools.lru_cache(maxsize=16)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` px (a fixed bitmap font if Pillow lacks FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ValueError, OSError, ImportError):
        return ImageFont.load_default()


def _text(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, fill: tuple[int, int, int], size: int,
          anchor: str, stroke: tuple[int, int, int] | None = None) -> None:
    """Draw text with an optional outline (skipped for fonts that cannot stroke)."""
    font = _font(size)
    if stroke is not None and isinstance(font, ImageFont.FreeTypeFont):
        draw.text(xy, text, fill=fill, font=font, anchor=anchor, stroke_width=1, stroke_fill=stroke)
    else:
        draw.text(xy, text, fill=fill, font=font, anchor=anchor if isinstance(font, ImageFont.FreeTypeFont) else None)


# ------------------------------------------------------------------------------------------------ frames


def intensity_range(images: Iterable[np.ndarray], low: float = 1.0, high: float = 99.0) -> tuple[float, float]:
    """The ``low``/``high`` percentiles of the pixels of some frames (each subsampled to ~256² pixels).

    Computed once per sequence and passed to :func:`render_overlay` so that the brightness does not flicker.
    """
    samples = []
    for image in images:
        step = max(1, int(np.sqrt(image.size / 65536)))
        samples.append(np.asarray(image[::step, ::step], dtype=np.float64).ravel())
    if not samples:
        raise EmbedTrackError("no frames to compute an intensity range from")
    lo, hi = np.percentile(np.concatenate(samples), [low, high])
    return float(lo), float(hi)


def to_uint8(image: np.ndarray, value_range: tuple[float, float] | None = None) -> np.ndarray:
    """Map ``value_range`` (default: the frame's 1st/99th percentiles) linearly to 0..255, clipping outside."""
    lo, hi = value_range if value_range is not None else intensity_range([image])
    if hi <= lo:
        hi = lo + 1.0
    scaled = (np.asarray(image, dtype=np.float32) - np.float32(lo)) * np.float32(255.0 / (hi - lo))
    mapped: np.ndarray = np.clip(scaled, 0, 255).round().astype(np.uint8)
    return mapped


def output_shape(shape: tuple[int, int], max_size: int = 512) -> tuple[int, int]:
    """(rows, cols) of a frame downscaled so that its longer side is at most ``max_size`` (never upscaled)."""
    scale = min(1.0, max_size / max(shape))
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def outlines(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of instance pixels with a 4-neighbour of another label (background or another cell)."""
    padded = np.pad(labels, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    edge: np.ndarray = (
        (centre != padded[:-2, 1:-1]) | (centre != padded[2:, 1:-1])
        | (centre != padded[1:-1, :-2]) | (centre != padded[1:-1, 2:])
    )
    edge &= centre != 0
    return edge


def centroids(labels: np.ndarray) -> dict[int, tuple[float, float, int]]:
    """Centre of mass (row, col) and pixel count of every label > 0."""
    present, ys, xs, areas = label_stats(labels)
    return {int(k): (float(y), float(x), int(a)) for k, y, x, a in zip(present, ys, xs, areas)}


def render_overlay(
    image: np.ndarray,
    labels: np.ndarray,
    *,
    value_range: tuple[float, float] | None = None,
    max_size: int = 512,
    draw_ids: bool = True,
    font_size: int | None = None,
) -> np.ndarray:
    """A grey frame with each instance outlined in its track colour and its id written beside it.

    ``image`` is normalised by ``value_range`` (default: its own 1st/99th percentiles) and, with ``labels``,
    downscaled to at most ``max_size`` px on the longer side. Returns an RGB uint8 array (rows, cols, 3).
    """
    if image.ndim != 2 or image.shape != labels.shape:
        raise EmbedTrackError(f"image {image.shape} and labels {labels.shape} must be 2-D of the same shape")
    rows, cols = output_shape(image.shape, max_size)
    gray = to_uint8(image, value_range)
    if (rows, cols) != image.shape:
        gray = np.asarray(Image.fromarray(gray).resize((cols, rows), Image.Resampling.BOX))
        r_idx = ((np.arange(rows) + 0.5) * image.shape[0] / rows).astype(np.intp)
        c_idx = ((np.arange(cols) + 0.5) * image.shape[1] / cols).astype(np.intp)
        small = labels[r_idx[:, None], c_idx[None, :]]
    else:
        small = labels
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    edge = outlines(small)
    rgb[edge] = TRACK_COLORS[(small[edge].astype(np.int64) - 1) % N_TRACK_COLORS]
    if not draw_ids:
        return rgb
    canvas = Image.fromarray(rgb)
    draw = ImageDraw.Draw(canvas)
    draw.fontmode = "1"  # crisp ids in exactly the track colour (no blended pixels)
    size = font_size or max(11, round(min(rows, cols) / 32))
    scale_r, scale_c = rows / image.shape[0], cols / image.shape[1]
    for label, (r, c, area) in centroids(labels).items():
        # beside the cell (upper right of its equivalent circle), so that the id does not hide it
        offset = 0.7 * np.sqrt(area / np.pi) * scale_c
        xy = ((c + 0.5) * scale_c + offset, (r + 0.5) * scale_r - offset)
        _text(draw, xy, str(label), track_color(label), size, "lb", stroke=(0, 0, 0))
    return np.asarray(canvas)


# ----------------------------------------------------------------------------------------------- lineage


def _lineage_order(tracks: list[Track]) -> tuple[list[Track], dict[int, Track]]:
    """Tracks in depth-first order (daughters right below their mother) and the label -> track map."""
    by_label = {t.label: t for t in tracks}
    children: dict[int, list[Track]] = {}
    roots = []
    for track in sorted(tracks, key=lambda t: (t.begin, t.label)):
        if track.parent in by_label and track.parent != track.label:
            children.setdefault(track.parent, []).append(track)
        else:
            roots.append(track)
    order: list[Track] = []
    seen: set[int] = set()
    pending = list(reversed(roots))
    leftovers = iter(sorted(tracks, key=lambda t: (t.begin, t.label)))  # tracks caught in a parent cycle
    while pending or len(seen) < len(by_label):
        if not pending:
            pending = [next(t for t in leftovers if t.label not in seen)]
        track = pending.pop()
        if track.label in seen:
            continue
        seen.add(track.label)
        order.append(track)
        pending.extend(reversed(children.get(track.label, [])))
    return order, by_label


def _tick_step(span: int, target: int = 8) -> int:
    """A 1/2/5 x 10^k step giving about ``target`` ticks over ``span`` frames."""
    raw = max(1.0, span / target)
    power = 10 ** int(np.floor(np.log10(raw)))
    return int(next(m * power for m in (1, 2, 5, 10) if m * power >= raw))


def _trees(tracks: list[Track]) -> list[list[Track]]:
    """The tracks grouped by the root of their tree (following parents), trees with a division first, then by
    size, then by their root's label."""
    by_label = {t.label: t for t in tracks}

    def root(track: Track) -> int:
        seen = set()
        while track.parent in by_label and track.parent not in seen:
            seen.add(track.label)
            track = by_label[track.parent]
        return track.label

    groups: dict[int, list[Track]] = {}
    for track in tracks:
        groups.setdefault(root(track), []).append(track)
    return sorted(groups.values(), key=lambda g: (-(division_count(g) > 0), -len(g), min(t.label for t in g)))


def select_lineages(tracks: Iterable[Track], max_tracks: int) -> tuple[list[Track], str]:
    """At most ``max_tracks`` tracks, whole trees only: those with a division first, then the largest; and a
    line saying what was left out ("" when nothing was)."""
    tracks = list(tracks)
    if len(tracks) <= max_tracks:
        return tracks, ""
    kept: list[Track] = []
    trees = _trees(tracks)
    shown = 0
    for tree in trees:
        if len(kept) + len(tree) > max_tracks:
            break
        kept.extend(tree)
        shown += 1
    rest = len(tracks) - len(kept)
    return kept, (f"showing {shown} of {len(trees)} lineages (those with divisions, then the largest); "
                  f"{rest} tracks in {len(trees) - shown} other lineages not drawn")


def render_lineage(
    tracks: Iterable[Track],
    n_frames: int,
    *,
    first_frame: int = 0,
    width: int = 900,
    row_height: int | None = None,
    max_tracks: int = 150,
) -> np.ndarray:
    """The lineage tree: time left to right, one horizontal line per track, a vertical connector per division.

    Tracks are stacked depth-first (daughters under their mother) in their overlay colours, each with its id
    at its right end when rows are tall enough. The time axis covers frames ``first_frame`` to
    ``first_frame + n_frames - 1`` (widened if a track lies outside). With more than ``max_tracks`` tracks only
    whole lineages are drawn, those with a division first, then the largest (:func:`select_lineages`), and a
    second title line counts the rest. Returns an RGB uint8 array.
    """
    everything = list(tracks)
    drawn, note = select_lineages(everything, max_tracks)
    order, by_label = _lineage_order(drawn)
    n = len(order)
    row = row_height or int(np.clip(1200 // max(n, 1), 1, 16))
    t0 = min([first_frame] + [t.begin for t in order])
    t1 = max([first_frame + max(n_frames, 1) - 1] + [t.end for t in order])
    left, right, top, bottom = 16, 48, 48 if note else 30, 40
    height = top + max(n, 1) * row + bottom
    frame_w = (width - left - right) / (t1 - t0 + 1)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)

    def x(t: float) -> float:
        return left + (t - t0) * frame_w

    rows = {track.label: top + i * row + row // 2 for i, track in enumerate(order)}
    thick = max(1, row // 3)
    n_div = division_count(everything)
    for track in order:  # division connectors first, so that the daughters' lines are drawn over them
        if track.parent in by_label and track.parent != track.label:
            x_start, y = x(track.begin), rows[track.label]
            draw.line([(x_start, rows[track.parent]), (x_start, y)], fill=track_color(track.parent), width=1)
    for track in order:
        y, color = rows[track.label], track_color(track.label)
        x_start, x_end = x(track.begin), max(x(track.begin), x(track.end + 1) - 1)
        draw.rectangle([x_start, y - thick // 2, x_end, y + (thick - 1) // 2], fill=color)
        if row >= 10:
            _text(draw, (x_end + 3, y), str(track.label), (40, 40, 40), min(row - 1, 12), "lm")
    if n == 0:
        _text(draw, (width / 2, top + row / 2), "no tracks", (120, 120, 120), 12, "mm")
    title = f"{counted(len(everything), 'track')}, {counted(n_div, 'division')}, frames {t0}-{t1}"
    _text(draw, (left, 15), title, (0, 0, 0), 13, "lm")
    if note:
        _text(draw, (left, 33), note, (90, 90, 90), 11, "lm")
    axis_y = height - bottom + 6
    draw.line([(x(t0), axis_y), (x(t1 + 1), axis_y)], fill=(0, 0, 0), width=1)
    step = _tick_step(t1 - t0 + 1)
    for t in range((t0 + step - 1) // step * step, t1 + 1, step):
        draw.line([(x(t), axis_y), (x(t), axis_y + 4)], fill=(0, 0, 0), width=1)
        _text(draw, (x(t), axis_y + 6), str(t), (0, 0, 0), 11, "mt")
    _text(draw, (x(t1 + 1), axis_y + 6), "frame", (90, 90, 90), 11, "rt")
    return np.asarray(canvas)


# --------------------------------------------------------------------------------------------------- GIF


def _gif_parts(data: bytes) -> tuple[bytes, bytes, bytes]:
    """Split a single-frame GIF into (colour table, 10-byte image descriptor without table flags, image data)."""
    packed = data[10]
    pos, table = 13, b""
    if packed & 0x80:
        size = 3 * 2 ** ((packed & 7) + 1)
        table, pos = data[13 : 13 + size], 13 + size
    while data[pos] == 0x21:  # extension blocks: skip
        pos += 2
        while data[pos]:
            pos += data[pos] + 1
        pos += 1
    if data[pos] != 0x2C:
        raise EmbedTrackError("unexpected GIF block from Pillow")
    descriptor = bytearray(data[pos : pos + 10])
    local = descriptor[9]
    pos += 10
    if local & 0x80:
        size = 3 * 2 ** ((local & 7) + 1)
        table, pos = data[pos : pos + size], pos + size
    descriptor[9] = local & 0x40  # keep only the interlace flag
    start = pos
    pos += 1  # LZW minimum code size
    while data[pos]:
        pos += data[pos] + 1
    return table, bytes(descriptor), data[start : pos + 1]


class GifStream:
    """An animated GIF written frame by frame to a binary handle: memory holds one frame, not the sequence.

    Frames (RGB uint8, all of one size) are mapped onto :func:`gif_palette` (:func:`to_palette`), encoded by
    Pillow one at a time and appended; :meth:`close` writes the trailer. Loops forever.
    """

    def __init__(self, handle: BinaryIO, fps: float = 5.0) -> None:
        self.handle = handle
        self.delay = max(2, round(100 / fps))  # centiseconds; viewers treat < 2 as "default speed"
        self.palette = gif_palette()
        self.size: tuple[int, int] | None = None
        self.global_table = b""
        self.frames = 0

    def add(self, rgb: np.ndarray) -> None:
        """Append one RGB frame."""
        frame = Image.fromarray(to_palette(rgb), "P")
        frame.putpalette(self.palette.ravel().tolist())
        buffer = io.BytesIO()
        frame.save(buffer, format="GIF", optimize=False)
        table, descriptor, data = _gif_parts(buffer.getvalue())
        if self.size is None:
            self.size, self.global_table = frame.size, table
            bits = max(0, (len(table) // 3).bit_length() - 2)
            screen = frame.size[0].to_bytes(2, "little") + frame.size[1].to_bytes(2, "little")
            self.handle.write(b"GIF89a" + screen + bytes([0x80 | 0x70 | bits, 0, 0]) + table)
            self.handle.write(b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00")
        elif frame.size != self.size:
            raise EmbedTrackError(f"GIF frame of size {frame.size} after frames of size {self.size}")
        self.handle.write(b"\x21\xf9\x04\x04" + self.delay.to_bytes(2, "little") + b"\x00\x00")
        if table == self.global_table:
            self.handle.write(descriptor + data)
        else:
            bits = max(0, (len(table) // 3).bit_length() - 2)
            self.handle.write(descriptor[:9] + bytes([descriptor[9] | 0x80 | bits]) + table + data)
        self.frames += 1

    def close(self) -> None:
        """Write the GIF trailer (the handle stays open)."""
        if self.frames == 0:
            raise EmbedTrackError("no frames were added to the GIF")
        self.handle.write(b"\x3b")
