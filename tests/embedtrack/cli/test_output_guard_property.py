"""Issue 19: every path a command writes goes through the one output guard (ctc.guard.check_outputs).

The property: for every command and every output option, pointing it at each of that command's inputs (the
folder, a file in it, the installed package's bundled models) is refused with one error line and nothing
changed (a hash of every file before and after), with and without --overwrite, before any expensive work
(the expensive entry points are replaced by ones that fail the test when called).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import pytest
from click.testing import CliRunner

from embedtrack.cli import main
from embedtrack.models.registry import BUNDLED_DIR
from tests.cli_result import invoke as _invoke
from tests.cli_result import refused as _refused
from tests.conftest import GT_TRACKS, gt_masks, write_dataset, write_result
from tests.tree_state import tree_state

BUNDLED = BUNDLED_DIR / "Fluo-N2DH-SIM+"


class World:
    """A user's files: a dataset ROOT/DS (01, 01_GT, 01_ST), a result RES and a model folder M."""

    def __init__(self, root: Path, model: Path) -> None:
        self.root = root
        self.ds = write_dataset(root / "data" / "DS")
        self.seq, self.gt = self.ds / "01", self.ds / "01_GT"
        self.res = write_result(root / "RES", gt_masks(), GT_TRACKS)
        self.model = Path(shutil.copytree(model, root / "M"))

    def state(self) -> dict[str, str]:
        return {**tree_state(self.root), **{f"bundled/{k}": v for k, v in tree_state(BUNDLED).items()}}


def _targets(folder: Path) -> list[Path]:
    """The input folder itself and its first file."""
    return [folder, next(p for p in sorted(folder.rglob("*")) if p.is_file())]


def _gif_at(target: Path) -> Path:
    """A .gif name that is ``target`` or lies in its folder (show refuses other suffixes on its own)."""
    return target / "movie.gif" if target.is_dir() else target.with_name(f"{target.name}.gif")


# command -> (its inputs, the command line with the output option pointed at ``target``)
Case = tuple[Callable[[World], list[Path]], Callable[[World, Path], list[str]]]
CASES: dict[str, Case] = {
    "run --output": (lambda w: [w.seq, w.gt / "TRA", w.model],
                     lambda w, t: ["run", str(w.seq), "--model", str(w.model), "--masks", str(w.gt / "TRA"),
                                   "--output", str(t)]),
    "train --out": (lambda w: [w.ds, w.model],
                    lambda w, t: ["train", str(w.ds), "--preset", "synth-fluo", "--init", str(w.model),
                                  "--out", str(t)]),
    "calibrate --out": (lambda w: [w.ds, w.model],
                        lambda w, t: ["calibrate", str(w.model), str(w.ds), "--out", str(t)]),
    "demo --out": (lambda w: [w.model],
                   lambda w, t: ["demo", "--model", str(w.model), "--out", str(t), "--frames", "2", "--size", "64"]),
    "show --out": (lambda w: [w.res, w.seq],
                   lambda w, t: ["show", str(w.res), "--raw", str(w.seq), "--out", str(_gif_at(t)),
                                 "--lineage", str(w.root / "tree.png")]),
    "show --lineage": (lambda w: [w.res, w.seq],
                       lambda w, t: ["show", str(w.res), "--raw", str(w.seq), "--out", str(w.root / "m.gif"),
                                     "--lineage", str(t)]),
    "evaluate --json": (lambda w: [w.res, w.gt],
                        lambda w, t: ["evaluate", str(w.res), str(w.gt), "--json", str(t)]),
    "batch --report": (lambda w: [w.seq, w.gt, w.model],
                       lambda w, t: ["batch", str(w.ds.parent), "--model", str(w.model), "--report", str(t)]),
    "synth OUT_DIR": (lambda w: [], lambda w, t: ["synth", str(t), "--frames", "2", "--size", "32", "32"]),
    "download --root": (lambda w: [], lambda w, t: ["download", "Fluo-N2DH-SIM+", "--root", str(t.parent),
                                                    "--base-url", "http://127.0.0.1:9"]),
}


def _no_work(*args: object, **kwargs: object) -> None:
    raise AssertionError("expensive work started before the output was checked")


@pytest.fixture
def no_expensive_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every expensive entry point of the writing commands fails the test when it is reached."""
    import ctc.evaluate
    import ctc.synth
    import embedtrack.io.batch
    import embedtrack.training.calibrate
    import embedtrack.io.download
    import embedtrack.training.loop
    from embedtrack.inference.tracker import Tracker

    monkeypatch.setattr(Tracker, "from_model", classmethod(_no_work))
    monkeypatch.setattr(embedtrack.training.loop, "load_dataset", _no_work)
    monkeypatch.setattr(embedtrack.training.calibrate, "load_annotated", _no_work)
    monkeypatch.setattr(ctc.synth, "generate_sequence", _no_work)
    monkeypatch.setattr(ctc.evaluate, "evaluate", _no_work)
    monkeypatch.setattr(embedtrack.io.batch, "open_client", _no_work)
    monkeypatch.setattr(embedtrack.io.download, "fetch", _no_work)


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_every_output_pointed_at_an_input_is_refused_and_nothing_changes(
        case: str, overwrite: bool, tmp_path: Path, tiny_model: Path, no_expensive_work: None) -> None:
    world = World(tmp_path, tiny_model)
    inputs, command = CASES[case]
    targets = [t for folder in inputs(world) for t in _targets(folder)] + [BUNDLED, BUNDLED / "weights.pt"]
    before = world.state()
    for target in targets:
        args = command(world, target) + (["--overwrite"] if overwrite and case != "download --root" else [])
        result = CliRunner().invoke(main, args)
        assert result.exit_code in (1, 2), f"{case} -> {target}: {result.output}"  # 2: click's own type check
        errors = [line for line in result.output.splitlines() if line.startswith("Error: ")]
        assert "Traceback" not in result.output and len(errors) == 1, result.output
        assert "expensive work" not in result.output, f"{case} -> {target}: checked too late"
        assert world.state() == before, f"{case} -> {target} changed files"


def _user_model(root: Path, model: Path) -> Path:
    mine = Path(shutil.copytree(model, root / "my_trained_model"))
    (mine / "checkpoint.pt").write_bytes(b"my checkpoint")
    (mine / "train_log.jsonl").write_text('{"epoch": 1}\n')
    return mine


def test_calibrate_never_replaces_a_model_folder_unasked(tmp_path: Path, tiny_model: Path,
                                                         no_expensive_work: None) -> None:
    world = World(tmp_path, tiny_model)
    mine = _user_model(tmp_path, tiny_model)
    before = world.state()
    _refused(_invoke("calibrate", world.model, world.ds, "--out", mine), "exists; use --overwrite")
    _refused(_invoke("calibrate", world.model, world.ds, "--out", BUNDLED, "--overwrite"), "bundled models")
    _refused(_invoke("calibrate", world.model, world.ds, "--out", world.ds / "model"), "lies inside the input")
    assert world.state() == before


def test_demo_never_replaces_a_dataset_or_pictures_unasked(tmp_path: Path, tiny_model: Path,
                                                           no_expensive_work: None) -> None:
    out = tmp_path / "out"
    write_dataset(out / "synthetic-nuclei")  # the user's own CTC data, not a demo's (no synth.json)
    (out / "demo.gif").write_bytes(b"my picture")
    before = tree_state(tmp_path)
    _refused(_invoke("demo", "--out", out, "--frames", "2", "--size", "64"), "does not look like")
    _refused(_invoke("demo", "--out", out, "--frames", "2", "--size", "64", "--overwrite"), "does not look like")
    (out / "synthetic-nuclei").rename(tmp_path / "moved")
    _refused(_invoke("demo", "--out", out, "--frames", "2", "--size", "64", "--overwrite"),
             "demo.gif", "does not look like a GIF")
    assert tree_state(tmp_path / "out") == {k.removeprefix("out/"): v for k, v in before.items()
                                            if k.startswith("out/") and "nuclei" not in k}


def test_evaluate_json_never_replaces_ground_truth_or_result(tmp_path: Path, tiny_model: Path) -> None:
    world = World(tmp_path, tiny_model)
    before = world.state()
    for target in (world.gt / "TRA" / "man_track.txt", world.res / "res_track.txt"):
        for extra in ([], ["--overwrite"]):
            _refused(_invoke("evaluate", world.res, world.gt, "--json", target, *extra), "lies inside the input")
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    _refused(_invoke("evaluate", world.res, world.gt, "--json", other), "does not look like a scores file")
    _refused(_invoke("evaluate", world.res, world.gt, "--json", other, "--overwrite"), "does not look like")
    assert other.read_text() == "mine" and world.state() == {**before, "notes.txt": world.state()["notes.txt"]}


def test_show_lineage_never_replaces_another_file(tmp_path: Path, tiny_model: Path) -> None:
    world = World(tmp_path, tiny_model)
    before = world.state()
    track_file = world.gt / "TRA" / "man_track.txt"  # not an input of show, but the user's file
    base = ["show", world.res, "--raw", world.seq, "--out", tmp_path / "m.gif", "--lineage", track_file]
    for extra in ([], ["--overwrite"]):
        _refused(_invoke(*base, *extra), "does not look like a PNG picture")
    assert world.state() == before and not (tmp_path / "m.gif").exists()


def test_batch_report_never_replaces_a_raw_frame(tmp_path: Path, tiny_model: Path) -> None:
    world = World(tmp_path, tiny_model)
    before = world.state()
    for extra in ([], ["--overwrite"]):
        _refused(_invoke("batch", world.ds.parent, "--model", world.model, "--report", world.seq / "t000.tif",
                         *extra), "lies inside the input")
    assert world.state() == before


def test_run_never_replaces_a_settings_file_it_did_not_write(tmp_path: Path, tiny_model: Path) -> None:
    from ctc.synth import write_dataset as synth

    data = synth(tmp_path / "DS", "fluo", 3, (48, 48), seed=1, sequences=("01",))
    before = tree_state(tmp_path)
    for extra in ([], ["--overwrite"]):
        _refused(_invoke("run", data / "01", "--model", tiny_model, "--output", data / "synth", *extra),
                 "synth.json: exists and does not look like a settings file")
    assert tree_state(tmp_path) == before


def test_overwrite_never_deletes_a_folder_named_like_a_mask(tmp_path: Path, tiny_model: Path) -> None:
    world = World(tmp_path, tiny_model)
    out = tmp_path / "01_RES"
    (out / "mask000.tif").mkdir(parents=True)
    (out / "mask000.tif" / "thesis.tex").write_text("mine")
    before = world.state()
    _refused(_invoke("run", world.seq, "--model", world.model, "--output", out, "--overwrite"),
             "mask000.tif is not a regular file")
    assert world.state() == before


def test_result_and_settings_land_together_or_not_at_all(tmp_path: Path, tiny_model: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    world = World(tmp_path, tiny_model)
    out = tmp_path / "01_RES"
    real = os.replace

    def disk_full_for_settings(src: object, dst: object) -> None:
        if str(dst).endswith("01_RES.json"):
            raise OSError(errno.ENOSPC, "No space left on device", str(src), None, str(dst))
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", disk_full_for_settings)
    before = world.state()
    result = _invoke("run", world.seq, "--model", world.model, "--output", out)
    _refused(result, f"{out}.json: No space left on device")
    assert ".tmp-" not in result.output
    assert world.state() == before  # no result folder, no settings, no temporary file
