"""Tests of the shell entry points: CTC scripts, run_sequence.sh and the container entrypoint.

Each script is run for real with a fake ``embedtrack`` command that records its arguments, so the tests check
which folders and model the scripts hand to ``embedtrack run``, without a model or Docker.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import stat
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

from embedtrack.models.presets import CTC_DATASETS

REPO = Path(__file__).resolve().parents[1]
CTC_SCRIPTS = REPO / "ctc_scripts"
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
RUN_SEQUENCE = REPO / "run_sequence.sh"
NINE_DATASETS = set(CTC_DATASETS)
SCRIPT_CASES = [(dataset, seq) for dataset in sorted(NINE_DATASETS) for seq in ("01", "02")]

FAKE_EMBEDTRACK = """#!/usr/bin/env bash
printf '%s\\n' "$@" > "$ET_RECORD"
"""


def load_generator() -> ModuleType:
    """Import docker/make_ctc_scripts.py (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("make_ctc_scripts", REPO / "docker" / "make_ctc_scripts.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def fake_bin(tmp_path: Path) -> Path:
    """A folder holding a fake ``embedtrack`` that writes its arguments, one per line, to $ET_RECORD."""
    folder = tmp_path / "bin"
    folder.mkdir()
    fake = folder / "embedtrack"
    fake.write_text(FAKE_EMBEDTRACK, encoding="utf-8")
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def run_script(cmd: list[str], cwd: Path, fake_bin: Path, record: Path,
               extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a script with the fake embedtrack first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMBEDTRACK")}
    env["PATH"] = f"{fake_bin}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
    env["ET_RECORD"] = str(record)
    env.update(extra_env or {})
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False)


def recorded(record: Path) -> list[str]:
    return record.read_text(encoding="utf-8").splitlines()


def make_layout(root: Path, datasets: list[str]) -> Path:
    """A CTC submission layout: <root>/<DATASET>/01, 02 and <root>/SW with all generated scripts."""
    for dataset in datasets:
        for seq in ("01", "02"):
            (root / dataset / seq).mkdir(parents=True)
    software = root / "SW"
    shutil.copytree(CTC_SCRIPTS, software)
    return software


# --- generated CTC scripts ------------------------------------------------------------------------------


def test_generated_scripts_cover_the_nine_datasets() -> None:
    generator = load_generator()
    assert len(NINE_DATASETS) == 9 and "Fluo-N2DH-SIM+" in NINE_DATASETS
    names = set(generator.expected_scripts())
    assert names == {f"{dataset}-{seq}.sh" for dataset, seq in SCRIPT_CASES}


def test_generated_scripts_are_up_to_date() -> None:
    generator = load_generator()
    assert generator.stale_scripts(CTC_SCRIPTS, generator.expected_scripts()) == []


def test_dataset_list_of_the_container_is_generated_from_the_presets() -> None:
    generator = load_generator()
    assert not generator.datasets_file_stale(), "run python docker/make_ctc_scripts.py"
    text = (REPO / "docker" / "ctc_datasets.txt").read_text(encoding="utf-8")
    names = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert names == list(CTC_DATASETS)


def test_check_mode_reports_a_stale_dataset_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    generator = load_generator()
    generator.write_scripts(tmp_path, generator.expected_scripts())
    stale = tmp_path / "ctc_datasets.txt"
    stale.write_text(generator.datasets_file_text(("BF-C2DL-HSC",)), encoding="utf-8")
    monkeypatch.setattr(generator, "DATASETS_FILE", stale)
    assert generator.main(["--check", "--output", str(tmp_path)]) == 1
    assert "ctc_datasets.txt" in capsys.readouterr().err


def test_stale_scripts_detects_an_edited_script(tmp_path: Path) -> None:
    generator = load_generator()
    scripts = generator.expected_scripts()
    generator.write_scripts(tmp_path, scripts)
    assert generator.stale_scripts(tmp_path, scripts) == []
    edited = tmp_path / "PhC-C2DL-PSC-02.sh"
    edited.write_text(edited.read_text(encoding="utf-8") + "# local edit\n", encoding="utf-8")
    (tmp_path / "BF-C2DL-HSC-01.sh").unlink()
    assert sorted(generator.stale_scripts(tmp_path, scripts)) == ["BF-C2DL-HSC-01.sh", "PhC-C2DL-PSC-02.sh"]


@pytest.mark.parametrize(("dataset", "seq"), SCRIPT_CASES)
def test_ctc_script_reads_and_writes_next_to_its_folder(tmp_path: Path, fake_bin: Path,
                                                        dataset: str, seq: str) -> None:
    root = tmp_path / "submission"
    software = make_layout(root, sorted(NINE_DATASETS))
    record = tmp_path / "args.txt"
    result = run_script([f"./{dataset}-{seq}.sh"], software, fake_bin, record)
    assert result.returncode == 0, result.stderr
    args = recorded(record)
    assert args[0] == "run"
    assert Path(args[1]).resolve() == (root / dataset / seq).resolve()
    assert args[args.index("--model") + 1] == dataset
    assert Path(args[args.index("--output") + 1]).resolve() == (root / dataset / f"{seq}_RES").resolve()


def test_ctc_script_works_from_another_directory_and_passes_options(tmp_path: Path, fake_bin: Path) -> None:
    root = tmp_path / "submission"
    software = make_layout(root, ["Fluo-N2DH-SIM+"])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    record = tmp_path / "args.txt"
    result = run_script([str(software / "Fluo-N2DH-SIM+-02.sh"), "--device", "cpu"], elsewhere, fake_bin, record)
    assert result.returncode == 0, result.stderr
    args = recorded(record)
    assert Path(args[1]).resolve() == (root / "Fluo-N2DH-SIM+" / "02").resolve()
    assert args[-2:] == ["--device", "cpu"]


def test_ctc_script_prefers_a_model_folder_beside_it(tmp_path: Path, fake_bin: Path) -> None:
    root = tmp_path / "submission"
    software = make_layout(root, ["BF-C2DL-HSC"])
    model = software / "models" / "BF-C2DL-HSC"
    model.mkdir(parents=True)
    record = tmp_path / "args.txt"
    result = run_script(["./BF-C2DL-HSC-01.sh"], software, fake_bin, record)
    assert result.returncode == 0, result.stderr
    args = recorded(record)
    assert Path(args[args.index("--model") + 1]).resolve() == model.resolve()


def test_ctc_script_fails_clearly_without_the_dataset(tmp_path: Path, fake_bin: Path) -> None:
    root = tmp_path / "submission"
    software = make_layout(root, ["PhC-C2DL-PSC"])
    record = tmp_path / "args.txt"
    result = run_script(["./DIC-C2DH-HeLa-01.sh"], software, fake_bin, record)
    assert result.returncode != 0
    assert "DIC-C2DH-HeLa/01" in result.stderr
    assert not record.exists()


# --- run_sequence.sh --------------------------------------------------------------------------------------


def test_run_sequence_resolves_folders_and_model(tmp_path: Path, fake_bin: Path) -> None:
    data = tmp_path / "ctc"
    (data / "PhC-C2DL-PSC" / "02").mkdir(parents=True)
    record = tmp_path / "args.txt"
    result = run_script([str(RUN_SEQUENCE), str(data), "PhC-C2DL-PSC", "02", "--overwrite"], tmp_path,
                        fake_bin, record)
    assert result.returncode == 0, result.stderr
    assert recorded(record) == ["run", f"{data}/PhC-C2DL-PSC/02", "--model", "PhC-C2DL-PSC",
                                "--output", f"{data}/PhC-C2DL-PSC/02_RES", "--overwrite"]

    models = tmp_path / "models"
    (models / "PhC-C2DL-PSC").mkdir(parents=True)
    result = run_script([str(RUN_SEQUENCE), str(data), "PhC-C2DL-PSC", "02"], tmp_path, fake_bin, record,
                        {"EMBEDTRACK_MODELS_DIR": str(models)})
    assert result.returncode == 0, result.stderr
    assert recorded(record)[3] == f"{models}/PhC-C2DL-PSC"


def test_run_sequence_rejects_missing_arguments_and_folders(tmp_path: Path, fake_bin: Path) -> None:
    record = tmp_path / "args.txt"
    usage = run_script([str(RUN_SEQUENCE), str(tmp_path)], tmp_path, fake_bin, record)
    assert usage.returncode == 2
    assert "DATA_ROOT DATASET SEQ" in usage.stderr
    missing = run_script([str(RUN_SEQUENCE), str(tmp_path), "Fluo-N2DH-SIM+", "01"], tmp_path, fake_bin, record)
    assert missing.returncode == 1
    assert "Fluo-N2DH-SIM+/01" in missing.stderr
    assert not record.exists()


# --- container entrypoint ---------------------------------------------------------------------------------


def entrypoint_env(tmp_path: Path, has_gpu: bool = False) -> dict[str, str]:
    """Point the entrypoint's fixed container paths into tmp_path."""
    for name in ("mounted", "baked", "bundled"):
        (tmp_path / name).mkdir(exist_ok=True)
    return {
        "EMBEDTRACK_DATA_ROOT": str(tmp_path / "data"),
        "EMBEDTRACK_MOUNTED_MODELS": str(tmp_path / "mounted"),
        "EMBEDTRACK_BAKED_MODELS": str(tmp_path / "baked"),
        "EMBEDTRACK_BUNDLED_MODELS": str(tmp_path / "bundled"),
        "EMBEDTRACK_DATASETS_FILE": str(REPO / "docker" / "ctc_datasets.txt"),
        "EMBEDTRACK_PYTHON": "true" if has_gpu else "false",  # stands in for the torch.cuda check
    }


def test_entrypoint_runs_the_sequence_with_a_mounted_model_on_cpu(tmp_path: Path, fake_bin: Path) -> None:
    env = entrypoint_env(tmp_path)
    (tmp_path / "data" / "Fluo-N2DH-SIM+" / "01").mkdir(parents=True)
    (tmp_path / "mounted" / "Fluo-N2DH-SIM+").mkdir()
    (tmp_path / "bundled" / "Fluo-N2DH-SIM+").mkdir()
    record = tmp_path / "args.txt"
    result = run_script([str(ENTRYPOINT), "Fluo-N2DH-SIM+", "1", "--no-tta"], tmp_path, fake_bin, record, env)
    assert result.returncode == 0, result.stderr
    seq_dir = tmp_path / "data" / "Fluo-N2DH-SIM+" / "01"
    assert recorded(record) == ["run", str(seq_dir), "--model", str(tmp_path / "mounted" / "Fluo-N2DH-SIM+"),
                                "--device", "cpu", "--output", f"{seq_dir}_RES", "--no-tta"]
    assert result.stderr.count("running on CPU") == 1


def test_entrypoint_uses_bundled_model_by_name_and_cuda_when_present(tmp_path: Path, fake_bin: Path) -> None:
    env = entrypoint_env(tmp_path, has_gpu=True)
    (tmp_path / "data" / "PhC-C2DL-PSC" / "02").mkdir(parents=True)
    (tmp_path / "bundled" / "PhC-C2DL-PSC").mkdir()
    record = tmp_path / "args.txt"
    result = run_script([str(ENTRYPOINT), "PhC-C2DL-PSC", "02", "--output", str(tmp_path / "out")], tmp_path,
                        fake_bin, record, env)
    assert result.returncode == 0, result.stderr
    args = recorded(record)
    assert args[args.index("--model") + 1] == "PhC-C2DL-PSC"
    assert args[args.index("--device") + 1] == "cuda"
    assert args.count("--output") == 1 and args[args.index("--output") + 1] == str(tmp_path / "out")
    assert "CPU" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["Nonexistent-DS", "01"], 2, "unknown dataset 'Nonexistent-DS'"),
        (["BF-C2DL-HSC", "01"], 1, "embedtrack train"),
        (["Fluo-N2DH-SIM+", "01"], 1, "nothing is mounted"),
        (["Fluo-N2DH-SIM+"], 2, "expected DATASET SEQ"),
        (["../etc", "01"], 2, "plain folder names"),
    ],
)
def test_entrypoint_errors_are_clear(tmp_path: Path, fake_bin: Path, argv: list[str], code: int,
                                     message: str) -> None:
    env = entrypoint_env(tmp_path)
    (tmp_path / "baked" / "Fluo-N2DH-SIM+").mkdir()
    record = tmp_path / "args.txt"
    result = run_script([str(ENTRYPOINT), *argv], tmp_path, fake_bin, record, env)
    assert result.returncode == code
    assert message in result.stderr
    assert result.stderr.count("error:") == 1
    assert not record.exists()


def test_entrypoint_reports_a_missing_sequence_folder(tmp_path: Path, fake_bin: Path) -> None:
    env = entrypoint_env(tmp_path)
    (tmp_path / "baked" / "Fluo-N2DH-SIM+").mkdir()
    (tmp_path / "data" / "Fluo-N2DH-SIM+" / "01").mkdir(parents=True)
    record = tmp_path / "args.txt"
    result = run_script([str(ENTRYPOINT), "Fluo-N2DH-SIM+", "02"], tmp_path, fake_bin, record, env)
    assert result.returncode == 1
    assert "Fluo-N2DH-SIM+/02" in result.stderr
    assert not record.exists()


def test_entrypoint_help_lists_models_and_missing_datasets(tmp_path: Path, fake_bin: Path) -> None:
    env = entrypoint_env(tmp_path)
    (tmp_path / "baked" / "BF-C2DL-HSC").mkdir()
    (tmp_path / "bundled" / "Fluo-N2DH-SIM+").mkdir()
    record = tmp_path / "args.txt"
    result = run_script([str(ENTRYPOINT), "--help"], tmp_path, fake_bin, record, env)
    assert result.returncode == 0
    assert "-v /path/to/ctc:/data embedtrack DATASET SEQ" in result.stdout
    assert "BF-C2DL-HSC (baked)" in result.stdout
    assert "Fluo-N2DH-SIM+ (bundled)" in result.stdout
    missing_line = next(line for line in result.stdout.splitlines() if line.startswith("CTC datasets without"))
    assert "PhC-C2DL-PSC" in missing_line and "BF-C2DL-HSC" not in missing_line
    no_args = run_script([str(ENTRYPOINT)], tmp_path, fake_bin, record, env)
    assert no_args.returncode == 2
    assert "Usage:" in no_args.stderr


def test_entrypoint_passes_embedtrack_commands_through(tmp_path: Path, fake_bin: Path) -> None:
    record = tmp_path / "args.txt"
    result = run_script([str(ENTRYPOINT), "embedtrack", "models"], tmp_path, fake_bin, record,
                        entrypoint_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert recorded(record) == ["models"]


def test_entrypoint_says_when_the_data_is_mounted_read_only(tmp_path: Path, fake_bin: Path) -> None:
    env = entrypoint_env(tmp_path)
    (tmp_path / "baked" / "Fluo-N2DH-SIM+").mkdir()
    dataset = tmp_path / "data" / "Fluo-N2DH-SIM+"
    (dataset / "01").mkdir(parents=True)
    mounts = tmp_path / "mounts"
    mounts.write_text(f"overlay / overlay rw,relatime 0 0\n/dev/sda1 {tmp_path / 'data'} ext4 ro,relatime 0 0\n")
    record = tmp_path / "args.txt"
    result = run_script([str(ENTRYPOINT), "Fluo-N2DH-SIM+", "01"], tmp_path, fake_bin, record,
                        {**env, "EMBEDTRACK_MOUNTS": str(mounts)})
    assert result.returncode == 1
    assert f"{dataset} is on a read-only mount" in result.stderr and "--user" not in result.stderr
    assert not record.exists()
    mounts.write_text(f"/dev/sda1 {tmp_path / 'data'} ext4 rw,relatime 0 0\n/dev/sdb1 /elsewhere ext4 ro 0 0\n")
    result = run_script([str(ENTRYPOINT), "Fluo-N2DH-SIM+", "01"], tmp_path, fake_bin, record,
                        {**env, "EMBEDTRACK_MOUNTS": str(mounts)})
    assert result.returncode == 0, result.stderr


def test_entrypoint_as_root_does_not_suggest_user(tmp_path: Path, fake_bin: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: checks the message the container gives when run as root")
    env = entrypoint_env(tmp_path)
    (tmp_path / "baked" / "Fluo-N2DH-SIM+").mkdir()
    dataset = tmp_path / "data" / "Fluo-N2DH-SIM+"
    (dataset / "01").mkdir(parents=True)
    if subprocess.run(["chattr", "+i", str(dataset)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i (an immutable folder, unwritable even for root) is not available here")
    try:
        record = tmp_path / "args.txt"
        result = run_script([str(ENTRYPOINT), "Fluo-N2DH-SIM+", "01"], tmp_path, fake_bin, record, env)
    finally:
        subprocess.run(["chattr", "-i", str(dataset)], check=True)
    assert result.returncode == 1
    assert f"{dataset} is not writable, not even for root" in result.stderr and "--user" not in result.stderr
    assert not record.exists()
