"""Model folders (``config.json`` + ``weights.pt``) and the bundled models, addressed by CTC dataset name.

A model folder holds:

* ``config.json``: architecture, preset, tile size, the :class:`~embedtrack.models.inference_config.InferenceConfig`
  (``inference``: normalisation, clustering and linking thresholds, minimum mask size, border, coordinate scale),
  training provenance and, optionally, ``appearance``: the conditions it was trained at (median cell diameter and
  body SNR of the training frames, :class:`~embedtrack.models.appearance_record.AppearanceRecord`), which the tracker's
  appearance stage compares a sequence with. Unknown keys, wrong types and out-of-range values are rejected with one message
  naming the file and the key; format-1 configs (before ``inference`` existed) are migrated on read.
* ``weights.pt``: the network's state dict only, loaded with ``weights_only=True``.
"""

from __future__ import annotations

import difflib
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ctc.guard import MODEL_CONFIG, MODEL_FILE
from ctc.writer import write_file
from embedtrack.models.appearance_record import AppearanceRecord
from embedtrack.errors import ConfigError, ModelError
from embedtrack.models.inference_config import InferenceConfig, check_fields

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    import torch

    from embedtrack.models.architecture import EmbedTrackNet

BUNDLED_DIR = Path(__file__).parent
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.pt"
FORMAT_VERSION = 2

# (folder, weights mtime and size, device) -> loaded model; None while caching is off (the default)
_MODEL_CACHE: dict[tuple[str, int, int, str], tuple[EmbedTrackNet, ModelConfig]] | None = None


@dataclass
class ModelConfig:
    """Everything needed to run a model besides its weights."""

    name: str
    preset: str
    architecture: dict[str, Any]
    tile_size: int = field(metadata={"lo": 8})
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    training: dict[str, Any] = field(default_factory=dict)
    calibration: dict[str, Any] = field(default_factory=dict)  # how the inference thresholds were chosen
    format: int = FORMAT_VERSION
    appearance: AppearanceRecord | None = None  # the conditions it was trained at (None: not recorded)

    @property
    def coord_scale(self) -> float:
        """Pixels per normalised offset unit (stored in :attr:`inference`)."""
        return self.inference.coord_scale

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.appearance is None:
            del data["appearance"]
        return data

    @classmethod
    def from_dict(cls, data: Any, source: str = "config") -> ModelConfig:
        """Check keys, types and ranges of every part (one :class:`ConfigError` naming ``source`` and the key);
        configs written before the ``inference`` section existed (format 1) are migrated on read."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a JSON object, got {type(data).__name__}")
        if data.get("format", 1) == 1:
            data = migrate_v1(data, source)
        values = dict(data)
        inference = values.pop("inference", {})
        appearance = values.pop("appearance", None)
        check_fields(cls, values, source, required=("name", "preset", "architecture", "tile_size"))
        if values.get("format", FORMAT_VERSION) != FORMAT_VERSION:
            raise ConfigError(f"{source}: format {values['format']} is not supported (expected {FORMAT_VERSION})")
        _check_architecture(values["architecture"], f"{source}: architecture")
        record = None if appearance is None else AppearanceRecord.from_dict(appearance, f"{source}: appearance")
        return cls(**values, inference=InferenceConfig.from_dict(inference, f"{source}: inference"), appearance=record)


_V1_POSTPROCESS = ("min_size", "seed_threshold", "kernel_threshold", "min_votes", "w_s")


def migrate_v1(data: dict[str, Any], source: str) -> dict[str, Any]:
    """A format-1 config (top-level ``coord_scale``, ``normalisation``, ``postprocess``) in today's format."""
    from embedtrack.models.presets import PRESETS

    values = dict(data)
    inference: dict[str, Any] = {}
    if "coord_scale" not in values:
        raise ConfigError(f"{source}: missing keys ['coord_scale']")
    inference["coord_scale"] = values.pop("coord_scale")
    norm = values.pop("normalisation", {})
    if not isinstance(norm, dict) or set(norm) - {"per", "low", "high"} or norm.get("per", "frame") != "frame":
        raise ConfigError(f"{source}: normalisation must be an object with per='frame', low and high, got {norm!r}")
    inference.update({f"norm_{k}": norm[k] for k in ("low", "high") if k in norm})
    post = values.pop("postprocess", {})
    if not isinstance(post, dict):
        raise ConfigError(f"{source}: postprocess must be an object, got {post!r}")
    unknown = sorted(set(post) - set(_V1_POSTPROCESS))
    if unknown:
        raise ConfigError(f"{source}: unknown postprocess keys {unknown}")
    inference.update(post)
    preset = PRESETS.get(values.get("preset", ""))  # type: ignore[arg-type]
    if preset is not None and preset.fov_border:
        inference["fov_border"] = preset.fov_border
    values["inference"] = inference
    values["format"] = FORMAT_VERSION
    return values


def _check_architecture(arch: dict[str, Any], source: str) -> None:
    """Types and ranges of the ``architecture`` object (:func:`embedtrack.models.architecture.check_architecture`)."""
    from embedtrack.models.architecture import check_architecture  # torch is imported by the caller anyway

    check_architecture(arch, source)


#: Old names of bundled models: a model named after a CTC dataset must have been trained on that dataset's real
#: images, so a renamed model answers to its old name with a warning that says what it is.
ALIASES: dict[str, tuple[str, str]] = {
    "BF-C2DL-HSC": ("synth-brightfield", "trained on synthetic brightfield sequences only, never on real "
                                         "BF-C2DL-HSC images"),
}


def bundled_models() -> dict[str, Path]:
    """Bundled model folders by name."""
    if not BUNDLED_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(BUNDLED_DIR.iterdir()) if (p / CONFIG_NAME).is_file()}


def bundled_name(name: str) -> str | None:
    """The bundled model ``name`` stands for: itself, a renamed model's old name (:data:`ALIASES`, with a
    warning) or a name that differs only in case; None when none does."""
    models = bundled_models()
    if name not in models and name in ALIASES:
        new_name, note = ALIASES[name]
        logger.warning("model %s is now called %s (%s)", name, new_name, note)
        name = new_name
    if name in models:
        return name
    folded = {n.casefold(): n for n in (*models, *ALIASES)}
    return bundled_name(folded[name.casefold()]) if name.casefold() in folded else None


def closest_names(name: str, names: list[str]) -> list[str]:
    """Names of ``names`` that ``name`` is probably a typo or a part of (case-insensitive), best first."""
    by_fold = {n.casefold(): n for n in names}
    query = name.casefold()
    close = difflib.get_close_matches(query, list(by_fold), n=3, cutoff=0.6)
    parts = [folded for folded in by_fold if query and query in folded and folded not in close]
    return [by_fold[folded] for folded in close + parts]


def resolve_model(name_or_dir: str | Path) -> Path:
    """A model folder from a path, or a bundled model's folder from its name (see :func:`bundled_name`)."""
    path = Path(name_or_dir)
    if path.is_dir():
        if not (path / CONFIG_NAME).is_file():
            raise ModelError(f"{path} is not a model folder: {CONFIG_NAME} is missing")
        return path
    models = bundled_models()
    name = bundled_name(str(name_or_dir))
    if name is not None:
        return models[name]
    suggestion = closest_names(str(name_or_dir), list(models))
    hint = f"Did you mean {' or '.join(repr(n) for n in suggestion)}? " if suggestion else ""
    raise ModelError(
        f"Unknown model {str(name_or_dir)!r}: neither a model folder nor a bundled model. {hint}"
        f"Bundled models: {', '.join(models) or 'none'}. "
        "Train one with `embedtrack train DATASET_DIR --preset NAME --out MODEL_DIR`."
    )


#: A model's config.json is a few kilobytes; a larger one is refused unread.
MAX_CONFIG_BYTES = 2**20


def read_json_object(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` (UTF-8, at most :data:`MAX_CONFIG_BYTES`); anything else (unreadable, not
    UTF-8, not JSON, nested too deeply, not an object) is one :class:`ModelError` naming the file."""
    size = path.stat().st_size if path.is_file() else 0
    if size > MAX_CONFIG_BYTES:
        raise ModelError(f"{path}: {size:,} bytes, more than the {MAX_CONFIG_BYTES:,} a model config can need")
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ModelError(f"{path}: cannot read model config (not UTF-8 text: {err.reason} at byte {err.start})") \
            from None
    except RecursionError:
        raise ModelError(f"{path}: cannot read model config (JSON nested too deeply)") from None
    except (OSError, ValueError) as err:
        raise ModelError(f"{path}: cannot read model config ({err})") from err
    if not isinstance(data, dict):
        raise ModelError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def read_config(folder: Path) -> ModelConfig:
    path = folder / CONFIG_NAME
    data = read_json_object(path)
    try:
        return ModelConfig.from_dict(data, source=str(path))
    except (ConfigError, TypeError) as err:
        raise ModelError(str(err)) from err


def enable_model_cache() -> None:
    """Keep every model this process loads, so that later :func:`load_model` calls return it without reading it
    again (used by long-lived batch workers; the cached network must not be modified by its users)."""
    global _MODEL_CACHE
    if _MODEL_CACHE is None:
        _MODEL_CACHE = {}


def load_model(name_or_dir: str | Path, device: str | torch.device = "cpu") -> tuple[EmbedTrackNet, ModelConfig]:
    """Load a model folder or bundled model onto ``device`` in eval mode (from the cache when it is enabled)."""
    folder = resolve_model(name_or_dir)
    weights = folder / WEIGHTS_NAME
    if _MODEL_CACHE is None or not weights.is_file():  # a missing file: _load_model names it
        return _load_model(folder, device)
    stat = weights.stat()
    key = (str(folder.resolve()), stat.st_mtime_ns, stat.st_size, str(device))
    if key not in _MODEL_CACHE:
        _MODEL_CACHE[key] = _load_model(folder, device)
    return _MODEL_CACHE[key]


def _load_model(folder: Path, device: str | torch.device) -> tuple[EmbedTrackNet, ModelConfig]:
    import torch

    from embedtrack.models.architecture import ArchConfig, EmbedTrackNet

    config = read_config(folder)
    try:
        arch = ArchConfig.from_dict(config.architecture)
    except (ConfigError, TypeError) as err:
        raise ModelError(f"{folder / CONFIG_NAME}: {err}") from err
    net = EmbedTrackNet(arch)
    weights_path = folder / WEIGHTS_NAME
    try:
        state = torch.load(weights_path, map_location=device, weights_only=True)
    except (OSError, RuntimeError, EOFError) as err:
        raise ModelError(f"{weights_path}: cannot read weights ({str(err) or type(err).__name__})") from err
    except Exception as err:  # the weights-only unpickler raises many types for foreign or broken files
        raise ModelError(f"{weights_path}: cannot read weights (not a PyTorch state dict file: "
                         f"{type(err).__name__})") from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelError(f"{weights_path}: not a state dict (expected a mapping of parameter names to tensors)")
    try:
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as err:
        first = str(err).splitlines()[0:3]
        raise ModelError(f"{weights_path} does not match the architecture in {CONFIG_NAME}: {' '.join(first)}") from err
    net.to(device).eval()
    return net, config


def write_inference(folder: str | Path, inference: InferenceConfig) -> ModelConfig:
    """Replace the ``inference`` section of a model folder's ``config.json`` (atomically; the rest is kept).

    This is how chosen thresholds (e.g. from a calibration) become the model's defaults. Returns the new config.
    """
    folder = resolve_model(folder)
    config = read_config(folder)
    config.inference = inference
    write_file(folder / CONFIG_NAME, json.dumps(config.to_dict(), indent=2) + "\n", MODEL_CONFIG, overwrite=True)
    return config


def write_appearance(folder: str | Path, record: AppearanceRecord | None) -> ModelConfig:
    """Replace the ``appearance`` record of a model folder's ``config.json`` (atomically; the rest is kept; None
    removes it)."""
    folder = resolve_model(folder)
    config = read_config(folder)
    config.appearance = record
    write_file(folder / CONFIG_NAME, json.dumps(config.to_dict(), indent=2) + "\n", MODEL_CONFIG, overwrite=True)
    return config


def write_calibrated(source: str | Path, out_dir: str | Path, inference: InferenceConfig,
                     calibration: dict[str, Any], overwrite: bool = False,
                     inputs: Sequence[str | Path] = ()) -> ModelConfig:
    """A copy of model ``source`` in ``out_dir`` with new inference settings and the calibration record.

    The folder is built beside ``out_dir`` and renamed into place. :func:`ctc.guard.check_outputs` applies:
    ``out_dir`` is neither ``source`` nor one of ``inputs`` nor a bundled model, and an existing one is replaced
    only with ``overwrite`` and when it holds nothing but a model's files.
    """
    from ctc.guard import MODEL
    from ctc.writer import copy_into, staged_folder

    folder = resolve_model(source)
    config = read_config(folder)
    config.inference = inference
    config.calibration = calibration
    with staged_folder(out_dir, MODEL, inputs=[folder, *inputs], overwrite=overwrite) as staging:
        copy_into(folder / WEIGHTS_NAME, staging / WEIGHTS_NAME)
        staging.file(CONFIG_NAME, json.dumps(config.to_dict(), indent=2) + "\n")
    return config


def save_model(folder: Path, net: EmbedTrackNet, config: ModelConfig, half: bool = False) -> None:
    """Write ``config.json`` and ``weights.pt`` into ``folder``, each replaced atomically."""
    import torch

    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu() for k, v in net.state_dict().items()}
    write_file(folder / WEIGHTS_NAME, lambda handle: torch.save(state, handle), MODEL_FILE, overwrite=True)
    write_file(folder / CONFIG_NAME, json.dumps(config.to_dict(), indent=2) + "\n", MODEL_CONFIG, overwrite=True)
