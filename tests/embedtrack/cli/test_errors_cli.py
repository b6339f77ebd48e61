"""How the CLI reports failures: one line per error (file + what to do), `--debug` for the traceback, and
SIGTERM/SIGKILL never leaving a partial result behind."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tifffile
from click.testing import CliRunner, Result

import ctc.io
import embedtrack.io.pipeline
from ctc.synth import write_dataset
from embedtrack.cli import main

REPO = Path(__file__).resolve().parents[3]


def _run(*args: str | Path, debug: bool = False) -> Result:
    return CliRunner().invoke(main, [*(["--debug"] if debug else []), "run", *map(str, args), "--device", "cpu"])


def _no_leftovers(folder: Path) -> None:
    assert not [p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.endswith("_RES")]


def test_unexpected_error_is_one_line_with_a_hint(tiny_model: Path, synth_dataset: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise TypeError("something nobody expected")

    monkeypatch.setattr(embedtrack.io.pipeline, "run_sequence", broken)
    result = _run(synth_dataset / "01", "--model", tiny_model)
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1] == ("Error: unexpected TypeError: something nobody expected "
                                                      "(run `embedtrack --debug ...` for the traceback)")
    debug = _run(synth_dataset / "01", "--model", tiny_model, debug=True)
    assert isinstance(debug.exception, TypeError)


def test_a_file_name_with_a_newline_cannot_forge_an_error_line(tiny_model: Path, tmp_path: Path) -> None:
    """Names are printed escaped: the message stays one line, whatever the name holds."""
    import numpy as np
    import tifffile

    folder = tmp_path / "movie\nError: all fine\r\x1b[2K"
    folder.mkdir()
    for t in range(3):
        tifffile.imwrite(folder / f"img{t}.tif", np.zeros((16, 16), np.uint8))
    os.mkfifo(folder / "img1\nError: forged.tif")
    result = _run(folder, "--model", tiny_model)
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    assert "movie\\nError: all fine\\r\\x1b[2K/img1\\nError: forged.tif: is not a regular file" in lines[0]


@pytest.mark.parametrize("code,hint", [(errno.ENOSPC, "the disk is full"), (errno.EROFS, "read-only"),
                                       (errno.EACCES, "permission denied")])
def test_write_failures_are_one_line_and_leave_nothing(tiny_model: Path, synth_dataset: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch, code: int, hint: str) -> None:
    def failing_write(path: Path, *args: object, **kwargs: object) -> None:
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(tifffile, "imwrite", failing_write)
    result = _run(synth_dataset / "01", "--model", tiny_model, "--output", tmp_path / "01_RES")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and hint in result.output and "mask000.tif" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["mask", "settings"])
def test_a_failed_run_removes_the_parent_folders_it_created(tiny_model: Path, synth_dataset: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch, where: str) -> None:
    def failing(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "somewhere")

    if where == "mask":  # while the masks are written
        monkeypatch.setattr(tifffile, "imwrite", failing)
    else:  # at the very end, when the result and its settings land together
        monkeypatch.setattr(ctc.io, "land_together", failing)
    result = _run(synth_dataset / "01", "--model", tiny_model, "--output", tmp_path / "a" / "b" / "res")
    assert result.exit_code == 1 and "the disk is full" in result.output, result.output
    assert list(tmp_path.iterdir()) == []


def test_a_stop_signal_whose_interrupt_was_swallowed_still_stops_the_run(tiny_model: Path, synth_dataset: Path,
                                                                         tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from embedtrack.cli import STOP_SIGNALS, _terminated

    real, calls = embedtrack.io.pipeline._add_seconds, []

    def swallowing(*args: object) -> None:  # the signal lands in code that drops the exception (a __del__)
        calls.append(1)
        if len(calls) == 2:
            try:
                _terminated(signal.SIGTERM, None)
            except KeyboardInterrupt:
                pass
        real(*args)

    monkeypatch.setattr(embedtrack.io.pipeline, "_add_seconds", swallowing)
    handlers = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        result = _run(synth_dataset / "01", "--model", tiny_model, "--output", tmp_path / "a" / "01_RES")
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    assert result.exit_code == 1 and len(calls) == 2, result.output  # stopped at the next frame
    assert list(tmp_path.iterdir()) == []
    from ctc import progress
    assert progress.STOP is None  # an in-process caller is not left stopping


def _start_run(seq: Path, model: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    code = "import sys; from embedtrack.cli import main; sys.exit(main())"
    return subprocess.Popen([sys.executable, "-c", code, "run", str(seq), "--model", str(model), "--device", "cpu"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for_temp(folder: Path, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 300  # generous: the machine may be loaded
    while not any(p.name.startswith(".01_RES.tmp-") and any(p.iterdir()) for p in folder.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be stopped"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def long_sequence(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("long") / "DS", "fluo", 60, (160, 160), seed=5, sequences=("01",))


def test_sigterm_stops_like_ctrl_c_and_leaves_no_temp(tiny_model: Path, long_sequence: Path) -> None:
    proc = _start_run(long_sequence / "01", tiny_model)
    _wait_for_temp(long_sequence, proc)
    tic = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    output = proc.communicate(timeout=30)[0].decode()
    assert time.monotonic() - tic < 10, "SIGTERM took too long"  # docker_check.sh holds docker stop to 3 s
    assert proc.returncode == 1 and "Traceback" not in output, output
    _no_leftovers(long_sequence)


@pytest.mark.parametrize("signals", [(signal.SIGTERM,) * 3, (signal.SIGHUP,), (signal.SIGHUP, signal.SIGTERM)],
                         ids=["three-sigterms", "sighup", "sighup-then-sigterm"])
def test_repeated_stop_signals_or_sighup_leave_no_temp(tiny_model: Path, long_sequence: Path,
                                                       signals: tuple[signal.Signals, ...]) -> None:
    proc = _start_run(long_sequence / "01", tiny_model)
    _wait_for_temp(long_sequence, proc)
    for sig in signals:  # a few ms apart: the later ones arrive while the first one's cleanup runs
        proc.send_signal(sig)
        time.sleep(0.003)
    output = proc.communicate(timeout=120)[0].decode()
    assert proc.returncode == 1 and "Traceback" not in output, output
    _no_leftovers(long_sequence)


def test_next_run_removes_what_sigkill_left(tiny_model: Path, long_sequence: Path) -> None:
    proc = _start_run(long_sequence / "01", tiny_model)
    _wait_for_temp(long_sequence, proc)
    proc.kill()
    proc.wait(timeout=30)
    stale = [p for p in long_sequence.iterdir() if p.name.startswith(".01_RES.tmp-")]
    assert len(stale) == 1
    for frame in sorted((long_sequence / "01").glob("t*.tif"))[3:]:  # a short second run
        frame.unlink()
    proc = _start_run(long_sequence / "01", tiny_model)
    output = proc.communicate(timeout=300)[0].decode()
    assert proc.returncode == 0, output
    assert f"removing {stale[0].name}, left by an interrupted earlier run" in output
    assert not stale[0].exists()
