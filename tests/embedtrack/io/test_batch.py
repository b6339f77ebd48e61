"""`embedtrack batch`: many sequences on a Dask cluster (local, or separate scheduler/worker processes)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import pytest
from click.testing import CliRunner, Result

from ctc.io import read_tiff
from embedtrack.io import batch
from embedtrack.cli import main
from embedtrack.errors import EmbedTrackError
from embedtrack.io.pipeline import RunOptions, run_sequence

distributed = pytest.importorskip("distributed")

SEQS = (("DS_A", "01"), ("DS_A", "02"), ("DS_B", "01"))


@pytest.fixture
def tree(tmp_path: Path, synth_dataset: Path) -> Path:
    """ROOT/DS_A/{01,02} and ROOT/DS_B/01 (6 frames of 96²; DS_A/01 with its ground truth)."""
    root = tmp_path / "root"
    for ds, seq in SEQS:
        shutil.copytree(synth_dataset / "01", root / ds / seq)
    shutil.copytree(synth_dataset / "01_GT", root / "DS_A" / "01_GT")
    return root


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    """The address of a local cluster of 2 single-thread workers shared by the tests of this module."""
    with batch.local_cluster(2, 1, dashboard=False) as cluster:
        yield cluster.scheduler_address


def invoke(root: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["-q", "batch", str(root), "--device", "cpu", *args])


def rows(report: Path) -> dict[tuple[str, str], dict]:
    return {(r["dataset"], r["sequence"]): r for r in json.loads(report.read_text())["sequences"]}


def same_result(a: Path, b: Path) -> bool:
    masks = sorted(p.name for p in a.glob("mask*.tif"))
    if masks != sorted(p.name for p in b.glob("mask*.tif")):
        return False
    same_masks = all(np.array_equal(read_tiff(a / m), read_tiff(b / m)) for m in masks)
    return same_masks and (a / "res_track.txt").read_text() == (b / "res_track.txt").read_text()


def test_local_cluster_results_equal_run(tree: Path, tiny_model: Path, tmp_path: Path) -> None:
    report = tmp_path / "batch.json"
    result = invoke(tree, "--model", str(tiny_model), "--workers", "2", "--threads-per-worker", "1",
                    "--report", str(report), "--evaluate")
    assert result.exit_code == 0, result.output
    table = rows(report)
    assert set(table) == set(SEQS) and {r["status"] for r in table.values()} == {batch.DONE}
    assert set(table["DS_A", "01"]["scores"]) == {"SEG", "TRA", "DET"} and not table["DS_B", "01"]["scores"]
    for ds, seq in SEQS:
        alone = run_sequence(tree / ds / seq, tiny_model, tmp_path / f"{ds}_{seq}_RES", RunOptions(device="cpu"))
        assert table[ds, seq]["frames"] == alone.frames and table[ds, seq]["tracks"] == alone.tracks
        assert same_result(tree / ds / f"{seq}_RES", alone.output)
    assert "DS_A" in result.output and "TRA" in result.output


def test_resume_after_interruption_finishes_only_what_is_missing(tree: Path, tiny_model: Path, scheduler: str,
                                                                 tmp_path: Path) -> None:
    assert invoke(tree, "--model", str(tiny_model), "--scheduler", scheduler).exit_code == 0
    shutil.rmtree(tree / "DS_A" / "02_RES")  # interrupted before this one was moved into place ...
    left = tree / "DS_A" / f".02_RES.tmp-{_dead_pid()}-killed00"  # ... leaving its temporary folder behind
    left.mkdir()
    kept = {p: p.stat().st_mtime_ns for p in (tree / "DS_A" / "01_RES").iterdir()}
    report = tmp_path / "again.json"
    result = invoke(tree, "--model", str(tiny_model), "--scheduler", scheduler, "--report", str(report))
    assert result.exit_code == 0, result.output
    statuses = {key: r["status"] for key, r in rows(report).items()}
    assert statuses == {("DS_A", "01"): "skipped", ("DS_A", "02"): "done", ("DS_B", "01"): "skipped"}
    assert {p: p.stat().st_mtime_ns for p in (tree / "DS_A" / "01_RES").iterdir()} == kept
    assert rows(report)["DS_A", "01"]["frames"] == 6
    assert not left.exists()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_skipped_sequence_loses_the_temporary_files_a_killed_worker_left(tree: Path, tiny_model: Path,
                                                                          scheduler: str) -> None:
    args = ("--model", str(tiny_model), "--scheduler", scheduler, "--datasets", "DS_B")
    assert invoke(tree, *args).exit_code == 0
    dead = _dead_pid()
    (tree / "DS_B" / f".01_RES.tmp-{dead}-abcd1234").mkdir()  # a worker killed while it overwrote 01_RES
    (tree / "DS_B" / f".01_RES.tmp-{dead}-abcd1234" / "mask000.tif").write_bytes(b"half")
    (tree / "DS_B" / f".01_RES.json.tmp-{dead}-abcd1234.json").write_text("{")
    (tree / "DS_B" / f".01_RES.tmp-{os.getpid()}-live1234").mkdir()  # a live process's: kept
    result = invoke(tree, *args)
    assert result.exit_code == 0, result.output
    assert _temps(tree / "DS_B") == [f".01_RES.tmp-{os.getpid()}-live1234"]


@pytest.fixture(scope="module")
def long_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """ROOT/DS/01: 60 frames of 160², long enough to be stopped while a worker writes its result."""
    from ctc.synth import write_dataset

    root = tmp_path_factory.mktemp("long") / "root"
    write_dataset(root / "DS", "fluo", 60, (160, 160), seed=5, sequences=("01",))
    return root


def _poll(condition: Callable[[], bool], proc: subprocess.Popen[bytes], timeout: float, what: str) -> None:
    """Wait until ``condition`` holds (polling: the machine may be loaded), failing if ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            output = proc.stdout.read().decode() if proc.stdout is not None else ""
            raise AssertionError(f"the batch ended before {what}: {output[-2000:]}")
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def test_sigterm_to_a_local_batch_leaves_no_temporary_folder_of_its_workers(long_tree: Path,
                                                                            tiny_model: Path) -> None:
    dataset = long_tree / "DS"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "OMP_NUM_THREADS": "1"}
    code = "import sys; from embedtrack.cli import main; sys.exit(main())"
    proc = subprocess.Popen([sys.executable, "-c", code, "batch", str(long_tree), "--model", str(tiny_model),
                             "--device", "cpu", "--workers", "1", "--threads-per-worker", "1"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _poll(lambda: any(p.name.startswith(".01_RES.tmp-") and any(p.iterdir()) for p in dataset.iterdir()),
              proc, 300, "a worker wrote into its temporary folder")
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=180)[0].decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    assert proc.returncode != 0 and "Traceback" not in output, output
    assert _temps(dataset) == [] and not (dataset / "01_RES").exists(), output


def test_broken_sequence_is_reported_and_the_others_go_on(tree: Path, tiny_model: Path, scheduler: str,
                                                          tmp_path: Path) -> None:
    (tree / "DS_A" / "02" / "t003.tif").write_bytes(b"not a tiff")
    report = tmp_path / "r.json"
    result = invoke(tree, "--model", str(tiny_model), "--scheduler", scheduler, "--report", str(report))
    assert result.exit_code == 1
    table = rows(report)
    assert table["DS_A", "02"]["status"] == "failed" and "t003.tif" in table["DS_A", "02"]["error"]
    assert "\n" not in table["DS_A", "02"]["error"]
    assert not (tree / "DS_A" / "02_RES").exists()
    assert table["DS_A", "01"]["status"] == table["DS_B", "01"]["status"] == "done"
    assert "t003.tif" in result.output


def test_skip_and_overwrite_rules(tree: Path, tiny_model: Path, scheduler: str, tmp_path: Path) -> None:
    args = ("--model", str(tiny_model), "--scheduler", scheduler, "--sequences", "01")
    assert invoke(tree, *args).exit_code == 0
    assert not (tree / "DS_A" / "02_RES").exists()  # --sequences 01
    (tree / "DS_B" / "01_RES" / "res_track.txt").write_text("1 0 99 0\n")  # a result that does not validate
    report = tmp_path / "r.json"
    result = invoke(tree, *args, "--report", str(report))
    assert result.exit_code == 1
    assert rows(report)["DS_A", "01"]["status"] == "skipped"
    broken = rows(report)["DS_B", "01"]
    assert broken["status"] == "failed" and "--overwrite" in broken["error"]
    assert (tree / "DS_B" / "01_RES" / "res_track.txt").read_text() == "1 0 99 0\n"  # never deleted unasked
    result = invoke(tree, *args, "--overwrite", "--report", str(report))
    assert result.exit_code == 0, result.output
    assert {r["status"] for r in rows(report).values()} == {"done"}
    assert same_result(tree / "DS_A" / "01_RES", tree / "DS_B" / "01_RES")


def test_models_by_dataset_name_and_missing_models(tree: Path, tiny_model: Path, scheduler: str,
                                                   tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(tiny_model, models / "DS_A")
    report = tmp_path / "r.json"
    everything = invoke(tree, "--model-dir", str(models), "--scheduler", scheduler, "--report", str(report))
    assert everything.exit_code == 0, everything.output  # `all`: datasets without a model are listed only
    assert rows(report)["DS_B", "01"]["status"] == "no model" and not (tree / "DS_B" / "01_RES").exists()
    assert "1 of 3 sequences not done: no model for DS_B" in everything.output  # and why the exit code is 0
    named = invoke(tree, "--model-dir", str(models), "--scheduler", scheduler, "--datasets", "DS_B")
    assert named.exit_code == 1 and "no model for dataset DS_B" in named.output


def test_a_dataset_named_by_an_old_or_differently_cased_model_name_gets_that_model(tree: Path) -> None:
    for name in ("BF-C2DL-HSC", "fluo-n2dh-gowt1"):
        (tree / name / "01").mkdir(parents=True)
    jobs = {j.dataset: j.model for j in batch.find_jobs(tree, sequences="01")}
    assert jobs["BF-C2DL-HSC"] == "synth-brightfield" and jobs["fluo-n2dh-gowt1"] == "Fluo-N2DH-GOWT1"


def test_quiet_reaches_the_workers_progress_bars(tree: Path, tiny_model: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    job = next(j for j in batch.find_jobs(tree, datasets="DS_A", sequences="01", model=str(tiny_model)))
    for quiet in (False, True):
        result = batch.process_job(job, batch.JobOptions(device="cpu", overwrite=True, quiet=quiet))
        assert result.status == "done", result.error
        bars = capsys.readouterr().err
        assert ("embedtrack 01" in bars) is not quiet


def test_find_jobs_and_input_errors(tree: Path, tiny_model: Path, tmp_path: Path) -> None:
    (tree / "Fluo-N2DH-SIM+" / "01").mkdir(parents=True)
    (tree / "DS_A" / "001").mkdir()  # not a two-digit sequence folder
    jobs = {(j.dataset, j.sequence): j for j in batch.find_jobs(tree, sequences="01")}
    assert set(jobs) == {("DS_A", "01"), ("DS_B", "01"), ("Fluo-N2DH-SIM+", "01")}
    assert jobs["Fluo-N2DH-SIM+", "01"].model == "Fluo-N2DH-SIM+" and jobs["DS_A", "01"].model is None
    assert jobs["DS_A", "01"].gt_dir is not None and jobs["DS_B", "01"].gt_dir is None
    one = batch.find_jobs(tree, datasets="DS_B", model=str(tiny_model))
    assert [j.model for j in one] == [str(tiny_model.resolve())]
    for kwargs, message in [({"datasets": "DS_X"}, "DS_X: dataset folder not found"),
                            ({"model": "No-Such"}, "Unknown model 'No-Such'"),
                            ({"model_dir": tmp_path / "none"}, "--model-dir")]:
        with pytest.raises(EmbedTrackError, match=message):
            batch.find_jobs(tree, **kwargs)
    result = invoke(tmp_path / "nowhere")
    assert result.exit_code == 1 and "nowhere: batch root folder not found" in result.output


def test_cluster_shape_fits_the_cores() -> None:
    assert batch.cluster_shape(None, None, cores=8) == (8, 1)
    assert batch.cluster_shape(None, 2, cores=8) == (4, 2)
    assert batch.cluster_shape(3, None, cores=8) == (3, 2)
    with pytest.raises(EmbedTrackError, match="exceeds the 2 usable cores"):
        batch.cluster_shape(2, 2, cores=2)


def test_missing_extra_is_one_clear_error(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    result = invoke(tree)
    assert result.exit_code == 1 and "pip install -c constraints.txt \".[distributed]\"" in result.output
    assert "Traceback" not in result.output


def test_report_path_is_checked_before_any_work(tree: Path, tmp_path: Path) -> None:
    result = invoke(tree, "--model", "Fluo-N2DH-SIM+", "--report", str(tmp_path / "no" / "r.json"))
    assert result.exit_code == 1 and "--report" in result.output
    assert not (tree / "DS_A" / "01_RES").exists()


def test_help_is_instant_and_imports_neither_dask_nor_torch() -> None:
    code = ("import sys; from click.testing import CliRunner; from embedtrack.cli import main; "
            "r = CliRunner().invoke(main, ['--help']); assert 'batch' in r.output; "
            "r = CliRunner().invoke(main, ['batch', '--help']); assert '--scheduler' in r.output; "
            "print(sorted(m for m in ('torch', 'dask', 'distributed') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_model_cache_returns_the_loaded_model(tiny_model: Path, monkeypatch: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    from embedtrack.models import registry

    monkeypatch.setattr(registry, "_MODEL_CACHE", None)
    assert registry.load_model(tiny_model)[0] is not registry.load_model(tiny_model)[0]
    registry.enable_model_cache()
    net, _ = registry.load_model(tiny_model)
    assert registry.load_model(str(tiny_model))[0] is net
    copy = shutil.copytree(tiny_model, tmp_path / "copy")
    assert registry.load_model(copy)[0] is not net  # another folder
    os.utime(copy / registry.WEIGHTS_NAME, ns=(1, 1))  # weights replaced: read again
    assert registry.load_model(copy)[0] is not registry.load_model(tiny_model)[0]


# ------------------------------------------------------------------- separate scheduler and worker processes


def _stop(procs: list[subprocess.Popen], grace: float = 20.0) -> None:
    """Let the processes exit on their own (a SIGTERM during Dask's shutdown can hang it), then terminate,
    then kill what is left."""
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _wait_for(path: Path, procs: list[subprocess.Popen], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not (path.is_file() and path.stat().st_size > 0):
        if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
            raise RuntimeError(f"dask scheduler did not start ({path})")
        time.sleep(0.2)


@pytest.fixture
def dask_processes(tmp_path: Path) -> Iterator[str]:
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1; yields the scheduler address."""
    from distributed import Client

    info = tmp_path / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "TQDM_DISABLE": "1"}
    dask = [sys.executable, "-m", "dask"]
    log = open(tmp_path / "dask.log", "wb")
    procs = [subprocess.Popen([*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(info)], env=env, stdout=log, stderr=log)]
    shut_down = False
    try:
        _wait_for(info, procs, timeout=60)
        address = json.loads(info.read_text())["address"]
        for _ in range(2):
            procs.append(subprocess.Popen([*dask, "worker", address, "--nthreads", "1", "--no-dashboard",
                                           "--no-nanny", "--host", "127.0.0.1"], env=env, stdout=log, stderr=log))
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=90)
            yield address
            client.shutdown()  # scheduler and workers
            shut_down = True
    finally:
        _stop(procs, grace=20.0 if shut_down else 0.0)
        log.close()


def test_running_scheduler_and_workers_as_processes(tree: Path, tiny_model: Path, dask_processes: str,
                                                    tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    result = invoke(tree, "--model", str(tiny_model), "--scheduler", dask_processes, "--report", str(report))
    assert result.exit_code == 0, result.output
    assert {r["status"] for r in rows(report).values()} == {"done"}
    alone = run_sequence(tree / "DS_B" / "01", tiny_model, tmp_path / "alone", RunOptions(device="cpu"))
    assert same_result(tree / "DS_B" / "01_RES", alone.output)
    bad = invoke(tree, "--scheduler", dask_processes, "--workers", "2")
    assert bad.exit_code == 1 and "--workers" in bad.output
