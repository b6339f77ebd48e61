"""Tracks table, CSV round trip, networkx graph, geff store (geff's validator, traccuracy's reader) and napari
export of a CTC result."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile
from click.testing import CliRunner

from ctc import export
from ctc.errors import CTCError
from ctc.io import open_result
from ctc.lineage import Track
from tests.conftest import GT_TRACKS, gt_masks, write_dataset


def test_table_has_one_row_per_cell_per_frame() -> None:
    table = export.track_table(gt_masks(), GT_TRACKS, first_index=0)
    assert len(table["node_id"]) == sum(len(np.unique(m)) - 1 for m in gt_masks())
    row = np.flatnonzero((table["track_id"] == 3) & (table["t"] == 2))[0]  # square (9, 12) side 4, parent 2
    assert (table["y"][row], table["x"][row], table["area"][row]) == (10.5, 13.5, 16)
    assert table["parent_track_id"][row] == 2 and table["lineage_id"][row] == 2 and table["label"][row] == 3


def test_csv_round_trips_to_the_same_lineage(tmp_path: Path) -> None:
    table = export.track_table(gt_masks(), GT_TRACKS, first_index=3)
    back = export.read_csv(export.write_csv(table, tmp_path / "tracks.csv"))
    shifted = [Track(t.label, t.begin + 3, t.end + 3, t.parent) for t in GT_TRACKS]
    assert sorted(export.tracks_from_table(back), key=lambda t: t.label) == shifted
    np.testing.assert_allclose(back["y"], table["y"], atol=1e-3)


def test_labels_without_a_track_and_bad_csv_are_errors(tmp_path: Path) -> None:
    with pytest.raises(CTCError, match="labels \\[5\\] have no track"):
        export.track_table(gt_masks(), GT_TRACKS[:4])
    (tmp_path / "bad.csv").write_text("track_id,t\n1,0\n")
    with pytest.raises(CTCError, match="bad.csv: not a tracks table"):
        export.read_csv(tmp_path / "bad.csv")


def test_graph_links_each_track_and_each_division() -> None:
    graph = export.to_networkx(export.track_table(gt_masks(), GT_TRACKS))
    node = {(d["track_id"], d["t"]): n for n, d in graph.nodes(data=True)}
    assert graph.number_of_nodes() == len(node)
    assert set(graph.successors(node[2, 1])) == {node[3, 2], node[4, 2]}  # the division
    assert list(graph.successors(node[1, 0])) == [node[1, 1]] and graph.in_degree(node[5, 3]) == 0
    assert graph.number_of_edges() == graph.number_of_nodes() - 3  # 3 lineages start: tracks 1, 2, 5


def test_napari_export(tmp_path: Path) -> None:
    out = export.write_napari(export.track_table(gt_masks(), GT_TRACKS), gt_masks(), tmp_path / "nap")
    np.testing.assert_array_equal(tifffile.imread(out / "labels.tif"), np.stack(gt_masks()))
    assert json.loads((out / "graph.json").read_text()) == {"3": [2], "4": [2]}
    assert (out / "tracks.csv").read_text().splitlines()[:2] == ["track_id,t,y,x", "1,0,4.000,4.000"]


def _perturbed_result(root: Path) -> Path:
    """The hand-made ground truth with one division missed (track 4 starts without a parent)."""
    from tests.conftest import write_result

    tracks = [t if t.label != 4 else Track(4, 2, 4, 0) for t in GT_TRACKS]
    return write_result(root / "01_RES", gt_masks(), tracks)


def test_geff_passes_geffs_validation(tmp_path: Path) -> None:
    geff = pytest.importorskip("geff")
    from geff.validate.data import ValidationConfig

    out = export.write_geff(export.track_table(gt_masks(), GT_TRACKS), gt_masks(), tmp_path / "r.geff.zarr")
    geff.validate_structure(str(out / "tracks"))
    every_check = ValidationConfig(graph=True, tracklet=True, lineage=True)
    graph, meta = geff.read(str(out / "tracks"), data_validation=every_check, backend="networkx")
    assert [a.name for a in meta.axes] == ["t", "y", "x"] and meta.related_objects[0].type == "labels"
    assert graph.number_of_nodes() == 15 and graph.number_of_edges() == 12  # 15 cells, 3 lineage roots
    with pytest.raises(CTCError, match="exists"):
        export.write_geff(export.track_table(gt_masks(), GT_TRACKS), gt_masks(), out)


def test_traccuracy_scores_the_geff_like_the_ctc_result(tmp_path: Path) -> None:
    pytest.importorskip("geff")
    pytest.importorskip("traccuracy")
    from traccuracy import run_metrics
    from traccuracy.loaders import load_ctc_data, load_geff_data
    from traccuracy.matchers import CTCMatcher
    from traccuracy.metrics import CTCMetrics

    from ctc.evaluate import evaluate
    from embedtrack.cli import main

    data = write_dataset(tmp_path / "DS", with_st=False)
    res = _perturbed_result(data)
    out = CliRunner().invoke(main, ["export", str(res), "--to", "geff"])
    assert out.exit_code == 0, out.output
    store = data / "01_RES.geff.zarr"
    from_geff = load_geff_data(str(store / "tracks"), seg_path=str(store / "segmentation"), seg_property="label")
    from_ctc = load_ctc_data(str(res))
    tra = [run_metrics(load_ctc_data(str(data / "01_GT" / "TRA")), pred, CTCMatcher(), [CTCMetrics()])[0][0]
           ["results"]["TRA"] for pred in (from_geff, from_ctc)]
    assert tra[0] == tra[1] < 1.0  # the missed division costs the same through either reader
    # py-ctcmetrics weighs the missed division differently (0.9911 against traccuracy's 0.9851 here)
    assert evaluate(res, data / "01_GT", ("TRA",))["TRA"] == pytest.approx(tra[0], abs=0.01)


def test_export_command_csv_and_refusals(tmp_path: Path) -> None:
    from embedtrack.cli import main

    res = _perturbed_result(tmp_path)
    run = CliRunner().invoke
    assert run(main, ["export", str(res), "--to", "csv"]).exit_code == 0
    masks, tracks = open_result(res)
    table = export.read_csv(tmp_path / "01_RES.csv")
    assert sorted(export.tracks_from_table(table), key=lambda t: t.label) == sorted(tracks, key=lambda t: t.label)
    again = run(main, ["export", str(res), "--to", "csv"])
    assert again.exit_code == 1 and "use --overwrite" in again.output
    inside = run(main, ["export", str(res), "--to", "napari", "--out", str(res / "nap")])
    assert inside.exit_code == 1 and "lies inside the input" in inside.output
    assert sorted(p.name for p in res.iterdir())[-1] == "res_track.txt" and len(list(res.iterdir())) == 6


def test_a_failed_napari_export_removes_the_parent_folders_it_created(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tifffile, "imwrite", full)
    with pytest.raises(OSError):
        export.write_napari(export.track_table(gt_masks(), GT_TRACKS), gt_masks(), tmp_path / "a" / "b" / "nap")
    assert list(tmp_path.iterdir()) == []
