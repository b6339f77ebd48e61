"""CLI tests of `embedtrack train`: model folder, log, resume, refusals before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ctc.synth import write_dataset
from embedtrack.cli import main
from embedtrack.models.registry import load_model, read_config

TINY = ["--preset", "synth-fluo", "--crops-per-epoch", "2", "--batch-size", "1", "--widths", "4,8,16"]


def _run(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["train", *map(str, args)])
    return result.exit_code, result.output


def _parameters(folder: Path) -> dict[str, torch.Tensor]:
    """The trainable weights of the last checkpoint (batch-norm statistics left out: they move at any rate)."""
    state = torch.load(folder / "checkpoint.pt", weights_only=True)["model"]
    return {k: v for k, v in state.items() if "running_" not in k and "num_batches" not in k}


def _log(folder: Path) -> list[dict[str, float]]:
    return [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_train_resume_and_refuse_to_overwrite(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "DS", "fluo", 8, (96, 96), 3, sequences=("01", "02"))
    out = tmp_path / "M"
    code, text = _run(data, "--out", out, "--epochs", "2", *TINY)
    assert code == 0, text
    assert f"model written to {out}" in text
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "config.json", "train_log.jsonl", "weights.pt"]
    log = _log(out)
    assert [r["epoch"] for r in log] == [1, 2]
    assert all(0.0 <= r["val_iou"] <= 1.0 and r["total"] > 0 for r in log)

    config = read_config(out)
    assert config.preset == "synth-fluo" and config.name == "synth-fluo"
    assert config.architecture["widths"] == [4, 8, 16]
    assert config.coord_scale == 256.0 and config.tile_size == 256
    assert config.inference.min_size >= 1
    assert set(config.training["sequences"]) == {"01", "02"}
    assert config.training["sequences"]["01"]["train_frames"] == 7
    assert config.training["best_epoch"] in (1, 2)
    assert config.training["val_iou"] == max(r["val_iou"] for r in log)
    net, _ = load_model(out)
    with torch.no_grad():
        seg, _, track = net(torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64))
    assert seg.shape == (1, 5, 64, 64) and track.shape == (1, 2, 64, 64)

    weights_before = _parameters(out)
    code, text = _run(data, "--out", out, "--epochs", "3", "--resume", *TINY)
    assert code == 0, text
    assert [r["epoch"] for r in _log(out)] == [1, 2, 3]
    assert _log(out)[:2] == log
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 3
    # the added epoch really trains (the schedule is stretched, not stuck at its final, tiny learning rate)
    change = max((after - weights_before[k]).abs().max().item() for k, after in _parameters(out).items())
    assert change > 1e-6

    before = (out / "train_log.jsonl").read_text()
    code, text = _run(data, "--out", out, "--epochs", "2", *TINY)
    assert code == 1
    assert f"Error: {out} exists and is not empty: pass --resume to continue it" in text
    assert (out / "train_log.jsonl").read_text() == before


def test_non_ctc_folder_fails_before_writing(tmp_path: Path) -> None:
    (tmp_path / "pictures").mkdir()
    (tmp_path / "pictures" / "a.tif").write_bytes(b"")
    out = tmp_path / "M"
    code, text = _run(tmp_path / "pictures", "--out", out, "--preset", "synth-fluo")  # preset batch size
    assert code == 1
    assert f"Error: {tmp_path / 'pictures'}: no sequence folders (01, 02, ...)" in text
    assert not out.exists()


def test_preset_whose_labels_are_missing_fails_before_writing(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "M"
    code, text = _run(dataset, "--out", out, "--preset", "PhC-C2DL-PSC")
    assert code == 1
    assert f"{dataset / '02_GT' / 'TRA'}: preset PhC-C2DL-PSC needs the GT tracking markers" in text
    assert "--derive-links" in text
    code, text = _run(dataset, "--out", out, "--preset", "synth-fluo")
    assert code == 1 and f"{dataset / '02_GT' / 'TRA'}: preset synth-fluo trains on GT tracking masks" in text
    assert not out.exists()


def test_resume_without_checkpoint_and_bad_options(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "M"
    code, text = _run(dataset, "--out", out, "--preset", "PhC-C2DL-PSC", "--derive-links", "--resume")
    assert code == 1 and f"{out}: nothing to resume, checkpoint.pt is missing" in text
    code, text = _run(dataset, "--out", out, "--preset", "No-Such-Set")
    assert code == 1 and "Unknown preset 'No-Such-Set'. Known presets: BF-C2DL-HSC" in text
    code, text = _run(dataset, "--out", out, "--preset", "synth-fluo", "--widths", "4,x,16")
    assert code == 2 and "--widths" in text
    assert not out.exists()


def test_init_starts_from_the_models_weights(tiny_model: Path, synth_dataset: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Fine-tuning: the network that trains holds the --init model's weights and architecture at step 0."""
    import embedtrack.training.loop as train_module

    seen: dict[str, torch.Tensor] = {}
    real = train_module._load_init

    def spy(net: torch.nn.Module, *args: object) -> None:
        real(net, *args)  # type: ignore[arg-type]
        seen.update({k: v.clone() for k, v in net.state_dict().items()})

    monkeypatch.setattr(train_module, "_load_init", spy)
    out = tmp_path / "tuned"
    code, text = _run(synth_dataset, "--out", out, "--epochs", "1", "--preset", "synth-fluo", "--crops-per-epoch", "2",
                      "--batch-size", "1", "--init", tiny_model)
    assert code == 0, text
    source, config = load_model(tiny_model)
    assert seen and all(torch.equal(seen[k], v) for k, v in source.state_dict().items())
    assert read_config(out).architecture == config.architecture  # no --widths: the model's


def test_a_fine_tuned_model_keeps_its_parents_calibration(tiny_model: Path, synth_dataset: Path,
                                                           tmp_path: Path) -> None:
    """--init: the child starts from the parent's inference settings, says so, and reports the IoU it started at."""
    import shutil

    from embedtrack.models.registry import write_inference

    parent = Path(shutil.copytree(tiny_model, tmp_path / "calibrated"))
    calibrated = read_config(parent).inference.replace(seed_threshold=0.4, kernel_threshold=0.3, min_size=56,
                                                       min_daughter_ratio=0.5)
    write_inference(parent, calibrated)
    out = tmp_path / "tuned"
    code, text = _run(synth_dataset, "--out", out, "--epochs", "1", "--preset", "synth-fluo", "--crops-per-epoch", "2",
                      "--batch-size", "1", "--init", parent)
    assert code == 0, text
    child = read_config(out)
    assert child.inference == calibrated.replace(fov_border=0, coord_scale=256.0)  # the preset's (synth-fluo)
    assert str(parent) in child.training["inference_from"]
    start = child.training["start_val_iou"]
    assert 0.0 <= start <= 1.0 and f"{start:.3f} before fine-tuning" in text


def test_init_refuses_other_widths_before_any_work(tiny_model: Path, synth_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "tuned"
    code, text = _run(synth_dataset, "--out", out, "--preset", "synth-fluo", "--init", tiny_model,
                      "--widths", "16,64,128")
    assert code == 2 and "differs from the widths of --init" in text and "Traceback" not in text
    assert not out.exists()
    code, text = _run(synth_dataset, "--out", out, "--preset", "synth-fluo", "--init", "no-such-model")
    assert code == 1 and "no-such-model" in text and not out.exists()


@pytest.mark.parametrize(("flag", "expected"), [("fp32", (torch.float32, False)), ("bf16", (torch.bfloat16, True))])
def test_precision_reaches_the_training_steps(synth_dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              flag: str, expected: tuple[torch.dtype, bool]) -> None:
    """--precision decides the arithmetic of the network in the steps; the inputs arrive in channels-last order on
    a CPU; the recorded options say which was asked for."""
    import embedtrack.training.loop as train_module

    seen: list[tuple[torch.dtype, bool]] = []
    real = train_module.EmbedTrackNet.forward

    def spy(self: torch.nn.Module, image_t: torch.Tensor, image_prev: torch.Tensor):  # type: ignore[no-untyped-def]
        out = real(self, image_t, image_prev)
        if self.training:
            seen.append((out[0].dtype, image_t.is_contiguous(memory_format=torch.channels_last)))
        return out

    monkeypatch.setattr(train_module.EmbedTrackNet, "forward", spy)
    out = tmp_path / flag
    code, text = _run(synth_dataset, "--out", out, "--epochs", "1", *TINY, "--precision", flag)
    assert code == 0, text
    assert seen and {dtype for dtype, _ in seen} == {expected[0]}
    assert all(channels_last for _, channels_last in seen)
    assert read_config(out).training["options"]["precision"] == flag
