"""Tests of embedtrack.models.registry: model folders (config.json + weights.pt) and model names."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from embedtrack.models import registry
from embedtrack.errors import ModelError
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.models.architecture import ArchConfig, EmbedTrackNet
from embedtrack.models.registry import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    ModelConfig,
    load_model,
    read_config,
    resolve_model,
    save_model,
)

ARCH = ArchConfig(widths=(4, 8, 16), encoder_blocks=1, dilation_rounds=1)


def _config(name: str = "tiny", arch: ArchConfig = ARCH) -> ModelConfig:
    return ModelConfig(name=name, preset="synth-fluo", architecture=arch.to_dict(), tile_size=64,
                       inference=InferenceConfig(coord_scale=64.0, min_size=7, seed_threshold=0.4),
                       training={"epochs": 3})


def _trained_looking_net() -> EmbedTrackNet:
    torch.manual_seed(0)
    net = EmbedTrackNet(ARCH)
    net.train()
    with torch.no_grad():  # move the batch-norm statistics away from their defaults
        for _ in range(2):
            net(torch.rand(2, 1, 32, 32) * 5, torch.rand(2, 1, 32, 32) * 5)
    return net.eval()


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    save_model(folder, _trained_looking_net(), _config())
    return folder


def test_round_trip_gives_identical_outputs(model_dir: Path) -> None:
    net = _trained_looking_net()
    loaded, config = load_model(model_dir)
    assert not loaded.training
    assert config == _config()
    frames = torch.rand(1, 1, 64, 96), torch.rand(1, 1, 64, 96)
    with torch.no_grad():
        for a, b in zip(net(*frames), loaded(*frames)):
            assert torch.equal(a, b)
    assert sorted(p.name for p in model_dir.iterdir()) == [CONFIG_NAME, WEIGHTS_NAME]  # no temp files left


def test_half_precision_weights_load_as_float(tmp_path: Path) -> None:
    net = _trained_looking_net()
    save_model(tmp_path / "half", net, _config(), half=True)
    loaded, _ = load_model(tmp_path / "half")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    frames = torch.rand(1, 1, 32, 32), torch.rand(1, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(net(*frames)[0], loaded(*frames)[0], atol=2e-2)


def test_config_with_unknown_key(model_dir: Path) -> None:
    path = model_dir / CONFIG_NAME
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "learning_rate": 0.1}))
    with pytest.raises(ModelError, match=rf"{path}.*unknown keys \['learning_rate'\]"):
        load_model(model_dir)
    data["inference"]["radius"] = 3
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"inference: unknown keys \['radius'\]"):
        read_config(model_dir)


def test_config_with_unknown_architecture_key(model_dir: Path) -> None:
    path = model_dir / CONFIG_NAME
    data = json.loads(path.read_text())
    data["architecture"]["depth"] = 3
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=rf"{path}.*'depth'"):
        load_model(model_dir)


def test_config_missing_keys_or_broken(model_dir: Path) -> None:
    path = model_dir / CONFIG_NAME
    data = json.loads(path.read_text())
    del data["tile_size"]
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=r"missing keys \['tile_size'\]"):
        load_model(model_dir)
    path.write_text("{not json")
    with pytest.raises(ModelError, match=rf"{path}: cannot read model config"):
        load_model(model_dir)


def test_weights_not_matching_the_architecture(model_dir: Path) -> None:
    path = model_dir / CONFIG_NAME
    data = json.loads(path.read_text())
    data["architecture"]["widths"] = [4, 8, 32]
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=rf"{model_dir / WEIGHTS_NAME} does not match the architecture in "
                                         rf"{CONFIG_NAME}"):
        load_model(model_dir)
    data["architecture"]["widths"] = [4, 8, 16]
    data["architecture"]["encoder_blocks"] = 2  # same widths, more layers: missing keys
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match="weights.pt does not match the architecture in config.json"):
        load_model(model_dir)


def test_unreadable_or_missing_weights(model_dir: Path) -> None:
    weights = model_dir / WEIGHTS_NAME
    for junk in (b"these are not weights", b"", b"PK\x03\x04 broken zip"):
        weights.write_bytes(junk)
        with pytest.raises(ModelError, match=rf"{weights}: cannot read weights \(.+\)"):
            load_model(model_dir)
    torch.save(torch.zeros(3), weights)
    with pytest.raises(ModelError, match=rf"{weights}: not a state dict"):
        load_model(model_dir)
    weights.unlink()
    with pytest.raises(ModelError, match=rf"{weights}: cannot read weights"):
        load_model(model_dir)


def test_unknown_model_name_lists_bundled_models(tmp_path: Path, model_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    bundled = tmp_path / "bundled"
    save_model(bundled / "Fluo-N2DH-SIM+", _trained_looking_net(), _config("Fluo-N2DH-SIM+"))
    (bundled / "not-a-model").mkdir()
    monkeypatch.setattr(registry, "BUNDLED_DIR", bundled)
    assert registry.bundled_models() == {"Fluo-N2DH-SIM+": bundled / "Fluo-N2DH-SIM+"}
    assert resolve_model("Fluo-N2DH-SIM+") == bundled / "Fluo-N2DH-SIM+"
    _, config = load_model("Fluo-N2DH-SIM+")
    assert config.name == "Fluo-N2DH-SIM+"
    with pytest.raises(ModelError, match=r"Unknown model 'Fluo-N2DL-HeLa'.*Bundled models: Fluo-N2DH-SIM\+\."):
        resolve_model("Fluo-N2DL-HeLa")
    assert resolve_model(model_dir) == model_dir  # a folder wins over the bundled names


def test_no_bundled_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "BUNDLED_DIR", tmp_path / "absent")
    assert registry.bundled_models() == {}
    with pytest.raises(ModelError, match="Unknown model 'nope'.*Bundled models: none"):
        load_model("nope")


def test_folder_without_config(tmp_path: Path) -> None:
    folder = tmp_path / "empty"
    folder.mkdir()
    with pytest.raises(ModelError, match=rf"{folder} is not a model folder: {CONFIG_NAME} is missing"):
        resolve_model(folder)


def test_a_renamed_bundled_model_answers_to_its_old_name_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        folder = registry.resolve_model("BF-C2DL-HSC")
    assert folder == registry.bundled_models()["synth-brightfield"]
    assert "now called synth-brightfield" in caplog.text and "never on real" in caplog.text
    assert "BF-C2DL-HSC" not in registry.bundled_models()  # a CTC name only for models trained on its data


def test_a_mistyped_model_name_gets_the_closest_bundled_name() -> None:
    folders = registry.bundled_models()
    assert resolve_model("fluo-n2dh-gowt1") == folders["Fluo-N2DH-GOWT1"]  # case-insensitive exact match
    assert resolve_model("bf-c2dl-hsc") == folders["synth-brightfield"]  # an old name, in any case
    for typo in ("Fluo-N2DH-GOWT", "gowt1"):
        with pytest.raises(ModelError, match=rf"Unknown model '{typo}'.*Did you mean 'Fluo-N2DH-GOWT1'"):
            resolve_model(typo)
    with pytest.raises(ModelError) as err:
        resolve_model("zzz")
    assert "Did you mean" not in str(err.value) and "Bundled models: " in str(err.value)
