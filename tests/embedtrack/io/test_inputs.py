"""A T×Y×X stack, a folder of arbitrarily named TIFFs and a CTC folder give the same result for the same frames,
through `embedtrack run`, `Tracker.track(path)` and `embedtrack batch`'s job discovery."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from ctc.io import open_result, open_sequence
from embedtrack.io.batch import find_jobs
from embedtrack.cli import main
from embedtrack.inference.tracker import Tracker

MODEL = "Fluo-N2DH-SIM+"


@pytest.fixture(scope="module")
def forms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The 6 frames of a synthetic sequence as a CTC folder, a folder of oddly named TIFFs and a stack."""
    from ctc.synth import generate_sequence

    frames = generate_sequence("fluo", 6, (96, 96), seed=5).images
    root = tmp_path_factory.mktemp("forms")
    ctc, folder = root / "DS" / "01", root / "DS" / "02"
    ctc.mkdir(parents=True)
    folder.mkdir()
    for t, frame in enumerate(frames):
        tifffile.imwrite(ctc / f"t{t:03d}.tif", frame)
        tifffile.imwrite(folder / f"Pos0 scan {5 * t}.tif", frame)  # lexical order: 0, 10, 15, 20, 25, 5
    tifffile.imwrite(root / "DS" / "movie.tif", np.stack(frames), compression="zlib")
    return {"ctc": ctc, "folder": folder, "stack": root / "DS" / "movie.tif"}


def _result(res: Path) -> tuple[np.ndarray, list[str]]:
    masks, tracks = open_result(res)
    return np.stack(list(masks)), sorted(str(t) for t in tracks)


def test_run_gives_one_result_for_every_form(forms: dict[str, Path]) -> None:
    results = {}
    for kind, path in forms.items():
        out = CliRunner().invoke(main, ["run", str(path), "--model", MODEL, "--device", "cpu"])
        assert out.exit_code == 0, out.output
        results[kind] = _result(path.with_name(path.stem + "_RES"))
    masks, tracks = results["ctc"]
    assert masks.max() > 1 and len(tracks) > 1
    for kind in ("folder", "stack"):
        np.testing.assert_array_equal(results[kind][0], masks, err_msg=kind)
        assert results[kind][1] == tracks, kind
    settings = json.loads(forms["folder"].with_name("02_RES.json").read_text())
    assert settings["input_kind"] == "folder" and settings["frame_files"][:3] == [
        "Pos0 scan 0.tif", "Pos0 scan 5.tif", "Pos0 scan 10.tif"]


def test_tracker_takes_a_path(forms: dict[str, Path]) -> None:
    tracker = Tracker.from_model(MODEL, device="cpu")
    frames = list(open_sequence(forms["ctc"]))
    expected = tracker.track(frames)
    for kind, path in forms.items():
        got = tracker.track(path)
        np.testing.assert_array_equal(np.stack(got.labels), np.stack(expected.labels), err_msg=kind)
        assert got.tracks == expected.tracks and got.first_index == 0


def test_batch_finds_folders_and_stacks(forms: dict[str, Path]) -> None:
    jobs = find_jobs(forms["ctc"].parent.parent, model=MODEL)
    assert [(j.sequence, Path(j.seq_dir).name, Path(j.output).name) for j in jobs] == [
        ("01", "01", "01_RES"), ("02", "02", "02_RES"), ("movie", "movie.tif", "movie_RES")]


def test_track_result_exports_what_its_ctc_result_holds(forms: dict[str, Path], tmp_path: Path) -> None:
    from ctc import export

    result = Tracker.from_model(MODEL, device="cpu").track(forms["stack"])
    res = result.write_ctc(tmp_path / "RES")
    masks, tracks = open_result(res)
    table = result.to_table()
    for name, column in export.track_table(masks, tracks).items():
        np.testing.assert_array_equal(table[name], column, err_msg=name)
    back = export.read_csv(result.to_csv(tmp_path / "tracks.csv"))
    assert sorted(export.tracks_from_table(back), key=lambda t: t.label) == sorted(tracks, key=lambda t: t.label)
    graph = result.to_networkx()
    divisions = {t.parent for t in tracks if t.parent}
    assert graph.number_of_nodes() == len(table["node_id"])
    assert sum(1 for n in graph if graph.out_degree(n) == 2) == len(divisions)
    labels, napari_tracks, napari_graph = result.to_napari()
    assert labels.shape == (6, 96, 96) and len(napari_tracks) == len(table["node_id"])
    assert napari_graph == {t.label: [t.parent] for t in tracks if t.parent}
