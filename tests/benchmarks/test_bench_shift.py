"""benchmarks/bench_shift.py: --help without data, and its conditions and runs end to end on a synthetic dataset
with a stand-in tracker that returns the ground truth (so every score must be 1)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ctc.conditions import measure
from ctc.io import TRACK_FILE_GT, TRACK_FILE_RES, read_tiff, write_tiff
from ctc.synth import write_dataset
from tests.benchmarks.test_ood_nuclei import REPO, load


@pytest.fixture(scope="module")
def bench() -> Any:
    return load("bench_shift")


def test_help_needs_no_data(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_shift.py"), "--help"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "--conditions" in done.stdout and "--stage" in done.stdout and "--plot" in done.stdout


def test_bad_options_are_refused_before_any_work(bench: Any, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="unknown condition"):
        bench.parse_args(["--conditions", "clean,snr3"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--frames", "1"])
    args = bench.parse_args(["--real", str(tmp_path / "nothing"), "--datasets", "Fluo-C2DL-MSC"])
    with pytest.raises(SystemExit, match="Fluo-C2DL-MSC/01: not found with its _GT folder; pass --real"):
        bench.check_args(args)
    real = tmp_path / "data"
    for part in ("01", "01_GT"):
        (real / "Fluo-C2DL-MSC" / part).mkdir(parents=True)
    args = bench.parse_args(["--real", str(real), "--datasets", "Fluo-C2DL-MSC", "--out", str(real / "work")])
    with pytest.raises(SystemExit, match="inside the data folder"):
        bench.check_args(args)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("keep")
    args = bench.parse_args(["--real", str(real), "--datasets", "Fluo-C2DL-MSC", "--out", str(tmp_path / "full")])
    with pytest.raises(SystemExit, match="not an empty folder"):
        bench.check_args(args)
    assert (tmp_path / "full" / "mine.txt").read_text() == "keep"


def test_stage_detection(bench: Any) -> None:
    def plain(self: Any, frames: Any, masks: Any = None) -> None: ...

    def staged(self: Any, frames: Any, masks: Any = None, cell_size: Any = "auto", denoise: Any = "auto") -> None: ...

    assert not bench.stage_available(plain) and bench.stage_available(staged)
    assert bench.stage_keywords("off", True) == {"cell_size": "off", "denoise": "off"}
    assert bench.stage_keywords("on", True) == {"cell_size": "auto", "denoise": "auto"}
    assert bench.stage_keywords("on", False) == {}


def test_what_the_stage_applied_is_recorded_where_the_result_has_it(bench: Any) -> None:
    class Stage:
        scale, sigma = 0.5, 1.25

    class Result:
        appearance = Stage()

    assert bench.applied(Result()) == {"applied_scale": 0.5, "applied_sigma": 1.25}
    assert bench.applied(object()) == {}


class GroundTruthTracker:
    """Returns the sequence's own TRA ground truth as its result; records the keywords it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[Path, dict]] = []

    def track(self, seq_dir: Path, **keywords: Any) -> Any:
        self.calls.append((Path(seq_dir), keywords))
        tra = Path(seq_dir).parent / f"{Path(seq_dir).name}_GT" / "TRA"
        return GroundTruthResult(tra)


class GroundTruthResult:
    def __init__(self, tra: Path) -> None:
        self.tra = tra
        self.labels = [read_tiff(f) for f in sorted(tra.glob("man_track*.tif"))]

    def write_ctc(self, res: Path) -> Path:
        res.mkdir(parents=True)
        for f in self.tra.glob("man_track*.tif"):
            shutil.copy(f, res / f.name.replace("man_track", "mask"))
        shutil.copy(self.tra / TRACK_FILE_GT, res / TRACK_FILE_RES)
        return res


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("real") / "DS", "fluo", frames=4, size=(96, 96), seed=1,
                         sequences=("01",))


def _real_data(bench: Any, dataset: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
               block: tuple[int, int]) -> tuple[Path, "GroundTruthTracker"]:
    """``dataset`` as the real dataset ``name`` (held-out block ``block``), tracked by its ground truth."""
    real = tmp_path / "real"
    real.mkdir()
    (real / name).symlink_to(dataset)
    tracker = GroundTruthTracker()
    monkeypatch.setattr(bench, "heldout_block", lambda dataset, sequence: block)
    monkeypatch.setattr("embedtrack.inference.tracker.Tracker.from_model", lambda model, device: tracker)
    return real, tracker


def test_conditions_and_runs_end_to_end(bench: Any, dataset: Path, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    name = "Fluo-N2DH-SIM+"
    real, tracker = _real_data(bench, dataset, tmp_path, monkeypatch, name, (0, 4))
    args = bench.parse_args(["--real", str(real), "--datasets", name, "--models", name, "--stage", "on,off",
                             "--conditions", "clean,snr4,snr2,snr1,x0.6,x2", "--frames", "3"])
    rows, reached = bench.runs(args, tmp_path / "work", True)
    assert reached[name]["frames"] == [0, 3]
    assert [(r["condition"], r["stage"]) for r in rows] == [(c, s) for c in ("clean", "snr4", "snr2", "snr1",
                                                                               "x0.6", "x2") for s in ("on", "off")]
    assert all(r["SEG"] == r["TRA"] == r["DET"] == pytest.approx(1.0) for r in rows)  # the ground truth, scaled too
    assert [kw for _, kw in tracker.calls] == [bench.STAGES[s] for _ in range(6) for s in ("on", "off")]
    for target in (4.0, 2.0, 1.0):
        report = reached[name][f"snr{target:g}"]
        assert report["snr_reached"] == pytest.approx(target, rel=0.02) and report["noise"] == "gaussian"
    snr2 = tmp_path / "work" / name / "snr2"
    frames = [read_tiff(f) for f in sorted((snr2 / "01").glob("t*.tif"))]
    seg = {f.name[-7:-4]: read_tiff(f) for f in (snr2 / "01_GT" / "SEG").glob("man_seg*.tif")}
    pairs = [(frames[int(k)], m) for k, m in seg.items()]
    assert measure(pairs).snr_median == pytest.approx(2.0, rel=0.02)
    assert reached[name]["x2"]["shape"] == [192, 192]
    assert read_tiff(tmp_path / "work" / name / "x2" / "01" / "t000.tif").shape == (192, 192)
    table = bench.table(rows)
    assert table.count("\n") == len(rows) + 1 and "| x2 | off | 1.000 | 1.000 | 1.000 |" in table


def test_stage_off_only_when_the_tracker_has_none(bench: Any, dataset: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    name = "Fluo-N2DH-GOWT1"
    real, tracker = _real_data(bench, dataset, tmp_path, monkeypatch, name, (1, 4))  # frame 0 has the outlines
    args = bench.parse_args(["--real", str(real), "--datasets", name, "--models", name, "--conditions", "clean",
                             "--stage", "on", "off"])
    rows, reached = bench.runs(args, tmp_path / "work", False)
    assert [(r["stage"], r["TRA"], "SEG" in r) for r in rows] == [("off", pytest.approx(1.0), False)]
    assert reached[name]["held_out"]["measured_on"] == "TRA markers"
    assert tracker.calls[0][1] == {}


def test_snr_is_measured_on_fully_outlined_frames(bench: Any, dataset: Path, tmp_path: Path) -> None:
    copy = shutil.copytree(dataset, tmp_path / "DS")
    markers = read_tiff(copy / "01_GT" / "TRA" / "man_track001.tif")
    write_tiff(copy / "01_GT" / "SEG" / "man_seg001.tif", np.where(markers == markers.max(), markers, 0))
    frames, masks, positions, source = bench.labelled_pairs(copy, "01")
    assert positions == [0] and source.startswith("SEG, frames with every cell")
    assert np.array_equal(masks[0], read_tiff(copy / "01_GT" / "SEG" / "man_seg000.tif"))
    (copy / "01_GT" / "SEG" / "man_seg000.tif").unlink()
    assert bench.labelled_pairs(copy, "01")[2:] == ([1], "SEG, partly outlined frames")
    shutil.rmtree(copy / "01_GT" / "SEG")
    assert bench.labelled_pairs(copy, "01")[2:] == ([0, 1, 2, 3], "TRA markers")


def test_plot_and_json(bench: Any, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rows = [{"dataset": "D", "model": "m", "condition": c, "stage": s, "SEG": v, "TRA": v, "DET": v, "seconds": 1.0}
            for c, v in (("clean", 0.9), ("snr2", 0.7), ("x2", 0.5)) for s in ("on", "off")]
    rows.append({"dataset": "D", "model": "m", "condition": "snr4", "stage": "off", "skipped": "already below"})
    bench.plot(rows, ["clean", "snr4", "snr2", "x2"], tmp_path / "shift.png")
    assert (tmp_path / "shift.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "skipped: already below" in bench.table(rows)
    bench.write_json(tmp_path / "r.json", {"rows": rows})
    assert np.isclose(__import__("json").loads((tmp_path / "r.json").read_text())["rows"][0]["SEG"], 0.9)


def test_main_prints_the_table_and_writes_json_and_plot(bench: Any, dataset: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    name = "Fluo-C2DL-MSC"
    real = tmp_path / "real"
    real.mkdir()
    (real / name).symlink_to(dataset)
    monkeypatch.setattr(bench, "heldout_block", lambda dataset, sequence: (0, 4))
    monkeypatch.setattr("embedtrack.inference.tracker.Tracker.from_model", lambda model, device: GroundTruthTracker())
    monkeypatch.setattr(bench, "stage_available", lambda: True)
    argv = ["--real", str(real), "--datasets", name, "--conditions", "clean,x0.6", "--frames", "2",
            "--json", str(tmp_path / "out" / "shift.json"), "--plot", str(tmp_path / "out" / "shift.png")]
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    assert printed.count(f"| {name} | {name} |") == 4 and "| x0.6 | on | 1.000 | 1.000 | 1.000 |" in printed
    saved = __import__("json").loads((tmp_path / "out" / "shift.json").read_text())
    assert saved["stage_available"] is True and len(saved["rows"]) == 4 and saved["command"][-len(argv):] == argv
    assert saved["conditions"][name]["x0.6"]["shape"] == [58, 58]
    assert (tmp_path / "out" / "shift.png").stat().st_size > 0
