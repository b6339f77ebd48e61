"""A zarr array (plain or OME-Zarr) gives the result its frames give as a CTC folder, through `embedtrack run`,
`Tracker.track(path)` and `embedtrack batch`'s job discovery (needs the extra zarr)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from ctc.io import open_result
from embedtrack.io.batch import find_jobs
from embedtrack.cli import main
from embedtrack.inference.tracker import Tracker
from tests.ctc.test_zarr_frames import write_array, write_ome


@pytest.fixture(scope="module")
def forms(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The 4 frames of a synthetic sequence as a CTC folder, a zarr array and an OME-Zarr image."""
    from ctc.synth import generate_sequence

    frames = np.stack(generate_sequence("fluo", 4, (64, 64), seed=5).images)
    root = tmp_path_factory.mktemp("zarr") / "DS"
    (root / "01").mkdir(parents=True)
    for t, frame in enumerate(frames):
        tifffile.imwrite(root / "01" / f"t{t:03d}.tif", frame)
    write_array(root / "movie.zarr", frames)
    write_ome(root / "plate.ome.zarr", frames[:, None, None])
    return {"ctc": root / "01", "zarr": root / "movie.zarr", "ome": root / "plate.ome.zarr"}


def test_run_and_tracker_take_a_zarr_array(forms: dict[str, Path], tiny_model: Path) -> None:
    expected = Tracker.from_model(tiny_model, device="cpu").track(forms["ctc"])
    for kind, res in (("zarr", "movie_RES"), ("ome", "plate_RES")):
        out = CliRunner().invoke(main, ["run", str(forms[kind]), "--model", str(tiny_model), "--device", "cpu"])
        assert out.exit_code == 0, out.output
        masks, tracks = open_result(forms[kind].with_name(res))
        np.testing.assert_array_equal(np.stack(list(masks)), np.stack(expected.labels), err_msg=kind)
        assert sorted(tracks, key=lambda t: t.label) == sorted(expected.tracks, key=lambda t: t.label)
        assert json.loads(forms[kind].with_name(res + ".json").read_text())["input_kind"] == "zarr"
        got = Tracker.from_model(tiny_model, device="cpu").track(forms[kind])
        np.testing.assert_array_equal(np.stack(got.labels), np.stack(expected.labels), err_msg=kind)


def test_batch_finds_zarr_arrays(forms: dict[str, Path], tiny_model: Path) -> None:
    jobs = find_jobs(forms["ctc"].parent.parent, model=str(tiny_model))
    assert [(j.sequence, Path(j.seq_dir).name, Path(j.output).name) for j in jobs] == [
        ("01", "01", "01_RES"), ("movie", "movie.zarr", "movie_RES"), ("plate", "plate.ome.zarr", "plate_RES")]
