"""Tests of embedtrack.training.heldout: the held-out block of a dataset on disk, written as a dataset of its own."""

from __future__ import annotations

from pathlib import Path

from ctc.io import open_sequence, open_tracking_gt
from embedtrack.training.data import load_dataset
from embedtrack.training.heldout import heldout_frames, main, write_heldout
from embedtrack.models.presets import get_preset
from tests.embedtrack.training.test_sparse_labels import write_sparse_dataset


def test_held_out_frames_on_disk_are_the_block_training_holds_out(tmp_path: Path) -> None:
    root, _ = write_sparse_dataset(tmp_path / "Fluo-N2DH-GOWT1", frames=13, every=3)
    (seq,) = load_dataset(root, get_preset("Fluo-N2DH-GOWT1"))
    assert heldout_frames(root, "01") == seq.heldout == (9, 13)
    out = write_heldout(root, "01", tmp_path / "heldout")
    assert open_sequence(out / "01").indices == [0, 1, 2, 3]
    markers, tracks = open_tracking_gt(out / "01_GT" / "TRA")
    assert len(markers) == 4 and all(t.begin >= 0 and t.end <= 3 for t in tracks)
    assert sorted(p.name for p in (out / "01_GT" / "SEG").iterdir()) == ["man_seg000.tif", "man_seg003.tif"]


def test_held_out_frames_of_silver_truth_get_ground_truth_linked_by_overlap(synth_dataset: Path, tmp_path: Path,
                                                                            capsys) -> None:  # noqa: ANN001
    psc = tmp_path / "PhC-C2DL-PSC"
    psc.mkdir()
    (psc / "01").symlink_to(synth_dataset / "01")
    (psc / "01_ST").symlink_to(synth_dataset / "01_ST")
    assert main([str(psc), "01", str(tmp_path / "out")]) == 0
    assert "frames 5..5 of PhC-C2DL-PSC/01" in capsys.readouterr().out  # the last 10 % of 6 frames
    assert [p.name for p in (tmp_path / "out" / "01_GT" / "SEG").iterdir()] == ["man_seg000.tif"]
    assert (tmp_path / "out" / "01_GT" / "TRA" / "man_track.txt").is_file()


def test_a_dataset_name_that_is_no_preset_is_one_error_line(synth_dataset: Path, tmp_path: Path,
                                                            capsys) -> None:  # noqa: ANN001
    mine = tmp_path / "my-movies"
    mine.mkdir()
    (mine / "01").symlink_to(synth_dataset / "01")
    assert main([str(mine), "01", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"Error: {mine}: Unknown preset 'my-movies'. Known presets: ")
    assert len(err.splitlines()) == 1 and not (tmp_path / "out").exists()
