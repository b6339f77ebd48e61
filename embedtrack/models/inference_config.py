"""One typed configuration of everything that turns network outputs into tracks (paper §3.3–3.4, §4.4).

:class:`InferenceConfig` holds the normalisation percentiles, the clustering thresholds and minimum instance
size (§3.3), the linking rules and their thresholds (§3.4 plus the two rules this package adds: background
competes, minimum daughter ratio), the lineage corrections after linking (:mod:`embedtrack.inference.lineage`), the
field-of-interest border and the coordinate scale. It is stored as the
``inference`` object of a model folder's ``config.json``; every value can be overridden per call
(:meth:`InferenceConfig.replace`) and from the command line (``embedtrack run --seed-threshold …``).

This module is torch-free so that the command line can build its options from it without importing torch.
:func:`check_fields` is the one type and range check used for every part of a model's ``config.json``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from embedtrack.errors import ConfigError

__all__ = ["InferenceConfig", "check_fields", "field_help"]


def _opt(default: Any, help: str, lo: float | None = None, hi: float | None = None, lo_open: bool = False,
         hi_open: bool = False) -> Any:
    """A dataclass field with its help text and allowed range (bounds inclusive unless ``*_open``)."""
    return field(default=default, metadata={"help": help, "lo": lo, "hi": hi, "lo_open": lo_open,
                                            "hi_open": hi_open})


@dataclass(frozen=True)
class InferenceConfig:
    """Normalisation, clustering, linking, border and coordinate scale of one model (all overridable)."""

    norm_low: float = _opt(1.0, "Lower percentile of the per-frame intensity normalisation.", 0.0, 100.0)
    norm_high: float = _opt(99.0, "Upper percentile of the per-frame intensity normalisation.", 0.0, 100.0)
    seed_threshold: float = _opt(0.5, "Seediness above which a pixel is foreground (paper §3.3: 0.5).",
                                 0.0, 1.0, hi_open=True)
    kernel_threshold: float = _opt(0.5, "A pixel joins a cluster centre when the kernel exceeds this (§3.3).",
                                   0.0, 1.0, lo_open=True, hi_open=True)
    min_votes: int = _opt(5, "A candidate centre needs more than this many votes in its 3x3 neighbourhood.", 0)
    min_size: int = _opt(10, "Smallest instance kept, in pixels (half the 1st percentile of training masks).", 0)
    w_s: float = _opt(-10.0, "Bandwidth weight of the clustering kernel, s = exp(w_s * bandwidth).",
                      hi=0.0, hi_open=True)
    refine_steps: int = _opt(2, "How often a new cluster centre moves to the mean shifted position of the pixels "
                                "its kernel gathers (0: the paper's rule, the seed's own).", 0, 20)
    seed_window: int = _opt(1, "Average the seediness over this square window before thresholding (1: off).", 1, 15)
    merge_reach: float = _opt(0.0, "A candidate centre within this many kernel radii of an earlier centre joins "
                                   "it (0: off, else >= 1).", 0.0)
    whole_cells: bool = _opt(True, "Make every instance one connected piece (islands join the neighbour they "
                                   "touch most or are dropped) and fill its holes.")
    min_fraction: float = _opt(0.0, "Fraction of a cell's shifted pixels its predecessor must receive (§3.4).",
                               0.0, 1.0)
    background_competes: bool = _opt(True, "A cell starts a new track when more of its shifted pixels land on "
                                           "background than on its best predecessor.")
    min_daughter_ratio: float = _opt(0.25, "Two claimants divide only if the smaller has at least this fraction "
                                           "of the larger's area; 0 is the paper's plain rule.", 0.0, 1.0)
    division_min_frames: int = _opt(0, "Lineage: a division stands only if both daughters last this many frames; "
                                       "else the short one is merged into its sibling or detached (0: off).", 0, 20)
    divide_apart: bool = _opt(False, "Lineage (with division_min_frames): daughters that still touch are merged "
                                     "back, so a division stands from the first frame they are apart.")
    restore_divisions: bool = _opt(False, "Lineage (with division_min_frames): a new track beside the only "
                                          "successor of the mask it points to becomes its sibling daughter when "
                                          "both last that long.")
    undo_merges: bool = _opt(False, "Lineage: a mask two cells entered that divides at the next frame is split "
                                    "between the two cells instead (two touching cells merged for a frame).")
    gap_frames: int = _opt(0, "Lineage: join a track that starts to one that ended at most this many frames "
                              "earlier nearby (a missed cell); the gap stays empty (0: off).", 0, 10)
    gap_reach: float = _opt(1.0, "Lineage: how far, in radii of the ended cell, a track may start from where "
                                 "the ended cell would be, to be joined to it.", 0.0, lo_open=True)
    min_track_frames: int = _opt(0, "Lineage: remove tracks shorter than this without parent and children "
                                    "(0: off).", 0, 20)
    edit_given_masks: bool = _opt(False, "Lineage: with given masks (--masks) the corrections may merge, split and "
                                         "remove masks; otherwise they only change links.")
    fov_border: int = _opt(0, "Drop cells lying entirely within this many pixels of the frame edge.", 0)
    coord_scale: float = _opt(256.0, "Pixels per normalised offset unit (the training crop size).", 0.0,
                              lo_open=True)

    def __post_init__(self) -> None:
        check_fields(type(self), dataclasses.asdict(self), "InferenceConfig")
        if 0.0 < self.merge_reach < 1.0:
            raise ConfigError(f"InferenceConfig: merge_reach must be 0 (off) or >= 1, got {self.merge_reach}")
        if self.norm_low >= self.norm_high:
            raise ConfigError(f"InferenceConfig: norm_low ({self.norm_low}) must be below norm_high "
                              f"({self.norm_high})")

    def replace(self, **overrides: Any) -> InferenceConfig:
        """A copy with some values changed; ``None`` values are ignored, unknown names rejected."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown inference setting(s) {unknown}; known: {sorted(known)}")
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any, source: str = "inference") -> InferenceConfig:
        """Build from a JSON object; unknown keys, wrong types and out-of-range values raise one ConfigError."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"{source}: expected an object, got {type(data).__name__}")
        check_fields(cls, data, source)
        try:
            return cls(**data)
        except ConfigError as err:
            raise ConfigError(f"{source}: {str(err).removeprefix('InferenceConfig: ')}") from None


def field_help(name: str) -> str:
    """The help text of one :class:`InferenceConfig` setting."""
    return next(f.metadata["help"] for f in fields(InferenceConfig) if f.name == name)


# ------------------------------------------------------------------------------------------ type checks


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is None:
        return getattr(tp, "__name__", str(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    return {list: "a list", tuple: "a list", dict: "an object"}.get(origin, str(tp))


def _matches(value: Any, tp: Any) -> bool:
    """Whether a JSON value has the declared type (bool is not a number; an int is a float)."""
    if tp is Any:
        return True
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is None:
        if tp is float:
            return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if tp is int:
            return isinstance(value, int) and not isinstance(value, bool)
        if tp is type(None):
            return value is None
        return isinstance(value, tp)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_matches(v, a) for v, a in zip(value, args))
        return all(_matches(v, args[0]) for v in value) if args else True
    if origin is dict:
        return isinstance(value, dict) and all(isinstance(k, str) for k in value)
    return any(_matches(value, a) for a in args)  # Union / Optional


def _in_range(value: float, meta: Mapping[str, Any]) -> bool:
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and (value < lo or (meta.get("lo_open") and value == lo)):
        return False
    return not (hi is not None and (value > hi or (meta.get("hi_open") and value == hi)))


def _range_text(meta: Mapping[str, Any]) -> str:
    lo, hi = meta.get("lo"), meta.get("hi")
    left = "(" if meta.get("lo_open") else "["
    right = ")" if meta.get("hi_open") else "]"
    return f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"


def check_fields(cls: type, data: Mapping[str, Any], source: str, required: tuple[str, ...] = ()) -> None:
    """Reject unknown or missing keys, values of the wrong type and out-of-range values of a dataclass.

    ``source`` names the file (and section) in the message; ranges come from the fields' ``lo``/``hi`` metadata.
    """
    declared = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(declared))
    if unknown:
        raise ConfigError(f"{source}: unknown keys {unknown}")
    missing = sorted(set(required) - set(data))
    if missing:
        raise ConfigError(f"{source}: missing keys {missing}")
    hints = typing.get_type_hints(cls)
    for key, value in data.items():
        tp = hints[key]
        if not _matches(value, tp):
            raise ConfigError(f"{source}: {key} must be {_type_name(tp)}, got {value!r}")
        meta = declared[key].metadata
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not _in_range(value, meta):
            raise ConfigError(f"{source}: {key} must be in {_range_text(meta)}, got {value!r}")
