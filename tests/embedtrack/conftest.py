"""Fixtures for the embedtrack tests: a tiny (untrained) model folder and a small synthetic sequence."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import torch

from ctc.synth import write_dataset
from embedtrack.models.architecture import ArchConfig, EmbedTrackNet
from embedtrack.models.inference_config import InferenceConfig
from embedtrack.models.registry import ModelConfig, save_model

TINY_ARCH = ArchConfig(widths=(4, 8, 16), encoder_blocks=1, dilation_rounds=1)


@pytest.fixture(autouse=True)
def _one_torch_thread(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tiny networks run fastest on one thread, and OpenMP threads spinning against other work on a shared
    machine slow them many-fold. OMP_NUM_THREADS also keeps `train`/`run` from raising the thread count."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder with random weights: predictions are meaningless, but every code path runs."""
    folder = tmp_path_factory.mktemp("model") / "tiny"
    torch.manual_seed(0)
    net = EmbedTrackNet(TINY_ARCH)
    with torch.no_grad():  # high seediness everywhere so that clustering finds instances to link
        net.seed_decoder.layers[-1].bias.fill_(3.0)
    config = ModelConfig(name="tiny", preset="synth-fluo", architecture=TINY_ARCH.to_dict(), tile_size=64,
                         inference=InferenceConfig(coord_scale=64.0, min_size=4), training={"data": "none"})
    save_model(folder, net, config)
    return folder


@pytest.fixture(scope="session")
def synth_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6-frame 96x96 synthetic fluorescence dataset with sequence 01 and its ground truth."""
    root = tmp_path_factory.mktemp("data") / "Fluo-N2DH-SIM+"
    write_dataset(root, "fluo", 6, (96, 96), seed=11, sequences=("01",))
    return root
