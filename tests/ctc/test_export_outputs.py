"""Exports and API writers go through ctc.writer: --overwrite replaces only what the same export writes, never a
raw frame, a man_track.txt, a run's settings file or a folder; the CTC frame-number limit; export's validation;
file names in messages escaped."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ctc import export
from ctc.errors import CTCError, CTCResultExistsError, CTCUnsafeOutputError, escape_name
from ctc.lineage import Track
from embedtrack.cli import main
from embedtrack.inference.tracker import TrackResult
from tests.conftest import GT_TRACKS, gt_masks, write_dataset, write_result


@pytest.fixture
def ds(tmp_path: Path) -> Path:
    """A dataset with a result ``01_RES`` and its settings file ``01_RES.json``."""
    root = write_dataset(tmp_path / "ds", with_st=False)
    write_result(root / "01_RES", gt_masks(), GT_TRACKS)
    settings = {"sequence": str(root / "01"), "result": str(root / "01_RES"), "inference": {}}
    (root / "01_RES.json").write_text(json.dumps(settings))
    return root


def _result() -> TrackResult:
    return TrackResult(gt_masks(), [{} for _ in GT_TRACKS], list(GT_TRACKS))


def _export(*args: str) -> tuple[int, str]:
    outcome = CliRunner().invoke(main, ["export", *args])
    return outcome.exit_code, outcome.output


@pytest.mark.parametrize("victim", ["01/t000.tif", "01_GT/TRA/man_track.txt", "01_RES.json"])
@pytest.mark.parametrize("kind", ["csv", "napari", "geff"])
def test_export_overwrite_never_replaces_another_kind_of_file(ds: Path, victim: str, kind: str) -> None:
    before = (ds / victim).read_bytes()
    code, output = _export(str(ds / "01_RES"), "--to", kind, "--out", str(ds / victim), "--overwrite")
    assert code == 1 and "does not look like a" in output and victim.split("/")[-1] in output
    assert (ds / victim).read_bytes() == before
    assert sorted(p.name for p in (ds / victim).parent.iterdir() if p.name.startswith(".")) == []


def test_export_overwrite_replaces_its_own_csv_and_refuses_a_folder(ds: Path) -> None:
    out = ds / "tracks.csv"
    assert _export(str(ds / "01_RES"), "--to", "csv", "--out", str(out))[0] == 0
    out.write_text(out.read_text().replace("\n1,", "\n9,", 1))
    assert _export(str(ds / "01_RES"), "--to", "csv", "--out", str(out), "--overwrite")[0] == 0
    assert export.read_csv(out)["track_id"][0] == 1
    code, output = _export(str(ds / "01_RES"), "--to", "csv", "--out", str(ds / "01"), "--overwrite")
    assert code == 1 and "it is a folder" in output


def test_api_to_csv_guards_like_the_cli(ds: Path) -> None:
    frame = ds / "01" / "t001.tif"
    before = frame.read_bytes()
    for overwrite in (False, True):
        with pytest.raises(CTCUnsafeOutputError, match="t001.tif: exists and does not look like a tracks table"):
            _result().to_csv(frame, overwrite=overwrite)
    assert frame.read_bytes() == before
    with pytest.raises(CTCUnsafeOutputError, match="01: exists and does not look like a tracks table.*a folder"):
        _result().to_csv(ds / "01", overwrite=True)
    path = _result().to_csv(ds / "t.csv")
    with pytest.raises(CTCResultExistsError, match="t.csv: exists; use --overwrite"):
        _result().to_csv(path)
    assert _result().to_csv(path, overwrite=True) == path


def test_api_geff_and_napari_refuse_another_kind(ds: Path) -> None:
    pytest.importorskip("geff")
    table = _result().to_table()
    with pytest.raises(CTCUnsafeOutputError, match="does not look like a geff store"):
        export.write_geff(table, gt_masks(), ds / "01", overwrite=True)
    with pytest.raises(CTCUnsafeOutputError, match="does not look like a napari export folder"):
        export.write_napari(table, gt_masks(), ds / "01_GT", overwrite=True)
    nap = export.write_napari(table, gt_masks(), ds / "nap")
    assert export.write_napari(table, gt_masks(), nap, overwrite=True) == nap
    store = _result().to_geff(ds / "r.geff.zarr")
    assert _result().to_geff(store, overwrite=True) == store
    assert sorted(p.name for p in ds.iterdir()) == ["01", "01_GT", "01_RES", "01_RES.json", "nap", "r.geff.zarr"]


def test_write_ctc_refuses_frame_numbers_without_a_ctc_name(tmp_path: Path) -> None:
    from ctc.validate import validate_result

    def starting_at(first: int) -> TrackResult:
        tracks = [Track(t.label, t.begin + first, t.end + first, t.parent) for t in GT_TRACKS]
        return TrackResult(gt_masks(), [{} for _ in GT_TRACKS], tracks, first)

    with pytest.raises(CTCError, match="frame number 1000004 is above 9999"):
        starting_at(10**6).write_ctc(tmp_path / "far")
    assert list(tmp_path.iterdir()) == []
    result = starting_at(9995)  # the last frame is mask9999.tif: valid
    assert [v for v in validate_result(result.write_ctc(tmp_path / "edge")) if v.severity == "error"] == []


def test_export_of_the_folder_itself_is_named_after_it(ds: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ds / "01_RES")
    for given in (".", f"..{os.sep}01_RES{os.sep}"):
        assert _export(given, "--to", "csv", "--overwrite")[0] == 0
    assert (ds / "01_RES.csv").is_file() and not (ds / ".csv").exists()


def test_export_refuses_an_inconsistent_result_as_evaluate_does(tmp_path: Path) -> None:
    tracks = [t if t.label != 2 else Track(2, 0, 3, 0) for t in GT_TRACKS]  # track 2 declared beyond its masks
    res = write_result(tmp_path / "01_RES", gt_masks(), tracks)
    code, output = _export(str(res), "--to", "csv")
    assert code == 1 and "res_track.txt: invalid CTC result, not exported" in output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["01_RES"]


def test_a_name_with_a_newline_cannot_forge_a_second_error_line(tmp_path: Path) -> None:
    forged = tmp_path / "x\nError: everything is fine"
    code, output = _export(str(forged), "--to", "csv", "--out", str(tmp_path / "t.csv"))
    assert code == 1 and len(output.strip().splitlines()) == 1 and output.startswith("Error: ")
    assert "x\\nError: everything is fine" in output
    assert escape_name("a\tb\x1b[31m\u2028é") == "a\\tb\\x1b[31m\\u2028é"


@pytest.mark.parametrize("labels, graph, message", [
    ("nan", {}, "the labels layer: label image of dtype float64 holds values that are not labels"),
    ("ok", {"3": ["two"]}, "the tracks layer's graph holds 'two', not a track id"),
    ("ok", {3: [object]}, "the tracks layer's graph holds <class 'object'>, not a track id"),
    ("ok", [(3, 2)], "the tracks layer's graph must map a track id to its parents"),
])
def test_napari_writer_refuses_labels_and_graphs_that_are_not_ids(tmp_path: Path, labels: str, graph: object,
                                                                   message: str) -> None:
    from embedtrack.napari._writer import write_ctc

    stack = np.stack(gt_masks()).astype(np.float64)
    if labels == "nan":
        stack[0, 0, 0] = np.nan
    with pytest.raises(CTCError, match=f"{tmp_path / 'saved'}: {message}"):
        write_ctc(str(tmp_path / "saved"), [(stack, {}, "labels"), (np.zeros((0, 4)), {"graph": graph}, "tracks")])
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("part", ["tracks", "segmentation"])
def test_geff_reader_names_the_store_of_deeply_nested_attributes(tmp_path: Path, part: str) -> None:
    pytest.importorskip("geff")
    from ctc.geff_read import read_geff

    store = _result().to_geff(tmp_path / "r.geff.zarr")
    attrs = store / part / ".zattrs"
    data = json.loads(attrs.read_text())
    attrs.write_text(json.dumps(data)[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(CTCError, match=f"{store / part}.*nested too deeply"):
        read_geff(store)


def test_log_lines_print_names_escaped(ds: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = ds / "t\nERROR forged.csv"
    stale = ds / f".{out.name}.tmp-999999999-abcdefgh.csv"  # what a killed export left: removed with a warning
    stale.write_text("half")
    code, output = _export(str(ds / "01_RES"), "--to", "csv", "--out", str(out))
    assert code == 0 and not stale.exists() and out.is_file()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "t\\nERROR forged.csv: removing" in warnings[0] and "\n" not in warnings[0]
