"""InferenceConfig and the checks of a model's config.json: types, ranges, unknown keys, migration, overrides."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedtrack.errors import ConfigError, ModelError
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.models.registry import (BUNDLED_DIR, CONFIG_NAME, ModelConfig, bundled_models, read_config, resolve_model,
                                 write_inference)

FORMAT_1_NAMES = ("BF-C2DL-HSC", "Fluo-N2DH-SIM+", "PhC-C2DL-PSC")
FORMAT_1 = Path(__file__).parent / "data" / "format1"  # the configs the bundled models shipped with before


def _format_1_folder(name: str, root: Path) -> Path:
    """A model folder with a format-1 config (as shipped before) and the bundled weights of that name."""
    folder = root / name
    folder.mkdir(parents=True)
    shutil.copy(FORMAT_1 / f"{name}.json", folder / CONFIG_NAME)
    shutil.copy(resolve_model(name) / "weights.pt", folder / "weights.pt")  # the same architecture as then
    return folder


@pytest.mark.parametrize("name", FORMAT_1_NAMES)
def test_format_1_configs_migrate(name: str, tmp_path: Path) -> None:
    old = json.loads((FORMAT_1 / f"{name}.json").read_text())
    assert old.get("format", 1) == 1
    config = read_config(_format_1_folder(name, tmp_path))
    assert config.inference.min_size == old["postprocess"]["min_size"]
    assert config.inference.coord_scale == old["coord_scale"] == config.coord_scale
    assert (config.inference.norm_low, config.inference.norm_high) == (old["normalisation"]["low"],
                                                                        old["normalisation"]["high"])
    for key in ("seed_threshold", "kernel_threshold", "min_votes", "w_s"):
        assert getattr(config.inference, key) == old["postprocess"][key]
    assert config.inference.min_daughter_ratio == 0.25 and config.inference.background_competes
    assert config.training == old["training"] and config.tile_size == old["tile_size"]


def test_migrated_config_round_trips_and_is_written_in_todays_format(tmp_path: Path) -> None:
    folder = _format_1_folder("Fluo-N2DH-SIM+", tmp_path)
    before = read_config(folder)
    after = write_inference(folder, before.inference.replace(seed_threshold=0.6, min_size=12))
    data = json.loads((folder / CONFIG_NAME).read_text())
    assert data["format"] == 2 and "postprocess" not in data and "coord_scale" not in data
    assert data["inference"]["seed_threshold"] == 0.6
    assert read_config(folder) == after
    assert after.training == before.training and after.architecture == before.architecture
    assert sorted(p.name for p in folder.iterdir()) == sorted(["config.json", "weights.pt"])  # no temp files


def _base() -> dict[str, Any]:
    return json.loads(json.dumps(read_config(BUNDLED_DIR / "Fluo-N2DH-SIM+").to_dict()))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (("inference", "seed_threshold"), "0.5", r"inference: seed_threshold must be float, got '0.5'"),
        (("inference", "seed_threshold"), None, r"inference: seed_threshold must be float, got None"),
        (("inference", "seed_threshold"), 1.5, r"seed_threshold must be in \[0.0, 1.0\), got 1.5"),
        (("inference", "kernel_threshold"), 0.0, r"kernel_threshold must be in \(0.0, 1.0\)"),
        (("inference", "min_size"), 2.5, r"min_size must be int, got 2.5"),
        (("inference", "min_size"), -1, r"min_size must be in \[0, inf\]"),
        (("inference", "min_size"), True, r"min_size must be int, got True"),
        (("inference", "background_competes"), 1, r"background_competes must be bool, got 1"),
        (("inference", "coord_scale"), 0, r"coord_scale must be in \(0.0, inf\]"),
        (("inference", "norm_low"), 99.5, r"norm_low \(99.5\) must be below norm_high"),
        (("inference", "fov_border"), [3], r"fov_border must be int, got \[3\]"),
        (("inference",), [], r"inference: expected an object"),
        (("architecture", "widths"), {"a": 1}, r"architecture: widths must be a list"),
        (("architecture", "widths"), [8, 32], r"architecture: widths must be a list"),
        (("architecture", "encoder_blocks"), "5", r"architecture: encoder_blocks must be int"),
        (("architecture", "dropout_high"), 1.0, r"architecture: dropout_high must be in \[0, 1\)"),
        (("architecture",), None, r"architecture must be an object"),
        (("tile_size",), "256", r"tile_size must be int"),
        (("tile_size",), 4, r"tile_size must be in \[8, inf\]"),
        (("name",), 3, r"name must be str, got 3"),
        (("training",), [], r"training must be an object"),
    ],
)
def test_bad_values_name_the_file_and_key(tmp_path: Path, path: tuple[str, ...], value: Any, message: str) -> None:
    data = _base()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / CONFIG_NAME).write_text(json.dumps(data))
    with pytest.raises(ModelError, match=rf"{folder / CONFIG_NAME}: .*{message}"):
        read_config(folder)


def test_unknown_keys_rejected_in_every_section(tmp_path: Path) -> None:
    for section in (None, "inference", "architecture"):
        data = _base()
        (data if section is None else data[section])["surprise"] = 1
        with pytest.raises(ConfigError, match=r"unknown keys \['surprise'\]"):
            ModelConfig.from_dict(data, "config.json")


def test_old_config_with_bad_sections(tmp_path: Path) -> None:
    old = json.loads((FORMAT_1 / "BF-C2DL-HSC.json").read_text())
    for key, value, message in (("postprocess", {"radius": 3}, r"unknown postprocess keys \['radius'\]"),
                                ("postprocess", {"min_size": "9"}, r"inference: min_size must be int"),
                                ("normalisation", [1, 99], r"normalisation must be an object")):
        with pytest.raises(ConfigError, match=rf"cfg: .*{message}"):
            ModelConfig.from_dict({**old, key: value}, "cfg")


def test_overrides() -> None:
    config = InferenceConfig()
    assert config.replace(seed_threshold=0.7, min_size=None).seed_threshold == 0.7
    assert config.replace(min_size=None).min_size == config.min_size
    with pytest.raises(ConfigError, match=r"unknown inference setting\(s\) \['seed'\]"):
        config.replace(seed=0.7)
    with pytest.raises(ConfigError, match="min_daughter_ratio must be in"):
        config.replace(min_daughter_ratio=2.0)


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(-2, 300, allow_nan=False),
                        st.text(max_size=3), st.lists(st.integers(0, 3), max_size=2),
                        st.dictionaries(st.text(max_size=2), st.integers(), max_size=1))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=st.sampled_from([f for f in InferenceConfig.__dataclass_fields__]), value=JSON_VALUES)
def test_any_json_value_gives_a_config_or_one_config_error(key: str, value: Any) -> None:
    try:
        config = InferenceConfig.from_dict({key: value}, "config.json: inference")
    except ConfigError as err:
        assert str(err).startswith("config.json: inference: ") and key in str(err)
    else:  # accepted values have the declared type and lie in range
        assert getattr(config, key) == value
        assert type(getattr(config, key)) in (int, float, bool) and not isinstance(value, (str, list, dict))


@pytest.mark.parametrize("name", sorted(bundled_models()))
def test_bundled_models_are_in_todays_format_with_calibration(name: str) -> None:
    data = json.loads((BUNDLED_DIR / name / CONFIG_NAME).read_text())
    assert data["format"] == 2 and data["calibration"]["best"] and data["training"]["command"]
    config = read_config(BUNDLED_DIR / name)
    for key, value in config.calibration["best"].items():
        assert getattr(config.inference, key) == value  # the calibrated values are the model's settings
