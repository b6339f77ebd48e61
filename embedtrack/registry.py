"""Model folders (``config.json`` + ``weights.pt``) and the bundled models, addressed by CTC dataset name.

A model folder holds:

* ``config.json``: architecture, preset, coordinate scale, normalisation, post-processing parameters (the
  minimum mask size among them) and training provenance. Unknown keys are rejected.
* ``weights.pt``: the network's state dict only, loaded with ``weights_only=True``.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedtrack.errors import ConfigError, ModelError

if TYPE_CHECKING:
    import torch

    from embedtrack.model import EmbedTrackNet

BUNDLED_DIR = Path(__file__).parent / "models"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.pt"
FORMAT_VERSION = 1

# (folder, weights mtime and size, device) -> loaded model; None while caching is off (the default)
_MODEL_CACHE: dict[tuple[str, int, int, str], tuple[EmbedTrackNet, ModelConfig]] | None = None


@dataclass
class PostprocessConfig:
    """Clustering and linking parameters (paper §3.3–3.4)."""

    min_size: int = 10
    seed_threshold: float = 0.5
    kernel_threshold: float = 0.5
    min_votes: int = 5
    w_s: float = -10.0


@dataclass
class ModelConfig:
    """Everything needed to run a model besides its weights."""

    name: str
    preset: str
    architecture: dict[str, Any]
    coord_scale: float
    tile_size: int
    normalisation: dict[str, Any] = field(default_factory=lambda: {"per": "frame", "low": 1.0, "high": 99.0})
    postprocess: PostprocessConfig = field(default_factory=PostprocessConfig)
    training: dict[str, Any] = field(default_factory=dict)
    format: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "config") -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"{source}: unknown keys {sorted(unknown)}")
        missing = {"name", "preset", "architecture", "coord_scale", "tile_size"} - set(data)
        if missing:
            raise ConfigError(f"{source}: missing keys {sorted(missing)}")
        values = dict(data)
        post = values.get("postprocess", {})
        post_known = {f.name for f in fields(PostprocessConfig)}
        if set(post) - post_known:
            raise ConfigError(f"{source}: unknown postprocess keys {sorted(set(post) - post_known)}")
        values["postprocess"] = PostprocessConfig(**post)
        if values.get("format", FORMAT_VERSION) != FORMAT_VERSION:
            raise ConfigError(f"{source}: format {values['format']} is not supported (expected {FORMAT_VERSION})")
        return cls(**values)


def bundled_models() -> dict[str, Path]:
    """Bundled model folders by name."""
    if not BUNDLED_DIR.is_dir():
        return {}
    return {p.name: p for p in sorted(BUNDLED_DIR.iterdir()) if (p / CONFIG_NAME).is_file()}


def resolve_model(name_or_dir: str | Path) -> Path:
    """A model folder from a path, or a bundled model's folder from its name."""
    path = Path(name_or_dir)
    if path.is_dir():
        if not (path / CONFIG_NAME).is_file():
            raise ModelError(f"{path} is not a model folder: {CONFIG_NAME} is missing")
        return path
    models = bundled_models()
    if str(name_or_dir) in models:
        return models[str(name_or_dir)]
    available = ", ".join(models) or "none"
    raise ModelError(
        f"Unknown model {str(name_or_dir)!r}: neither a model folder nor a bundled model. "
        f"Bundled models: {available}. Train one with `embedtrack train DATASET_DIR --preset NAME --out MODEL_DIR`."
    )


def read_config(folder: Path) -> ModelConfig:
    path = folder / CONFIG_NAME
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ModelError(f"{path}: cannot read model config ({err})") from err
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

    from embedtrack.model import ArchConfig, EmbedTrackNet

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


def save_model(folder: Path, net: EmbedTrackNet, config: ModelConfig, half: bool = False) -> None:
    """Write ``config.json`` and ``weights.pt`` into ``folder``, each replaced atomically."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    state = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu() for k, v in net.state_dict().items()}
    _atomic_write(folder / WEIGHTS_NAME, lambda f: torch.save(state, f))
    text = json.dumps(config.to_dict(), indent=2) + "\n"
    _atomic_write(folder / CONFIG_NAME, lambda f: f.write(text.encode()))


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
