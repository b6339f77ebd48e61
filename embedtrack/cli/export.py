"""`embedtrack export`: a CTC result folder as a tracks table (CSV), a geff graph or napari layers."""

from __future__ import annotations

import os
from pathlib import Path

import click

from embedtrack.cli._common import handle_errors, overwrite_option

SUFFIX = {"csv": ".csv", "geff": ".geff.zarr", "napari": "_napari"}


@click.command("export")
@click.argument("result", type=click.Path(path_type=Path))
@click.option("--to", "kind", type=click.Choice(list(SUFFIX)), required=True,
              help="csv: one row per cell per frame; geff: a geff graph store with the segmentation (needs the "
                   "extra geff); napari: labels.tif + tracks.csv + graph.json.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output file or folder [default: RESULT.csv, RESULT.geff.zarr or RESULT_napari].")
@overwrite_option
@handle_errors
def command(result: Path, kind: str, out: Path | None, overwrite: bool) -> None:
    """Export the CTC result folder RESULT (maskNNN.tif + res_track.txt).

    Table columns: node_id, track_id, t (frame number), y, x (centroid), area (pixels), parent_track_id (0: none),
    label (the cell's value in the mask), lineage_id (the root track). The geff store holds the graph in
    OUT/tracks and the label images in OUT/segmentation.
    """
    from ctc import export
    from ctc.io import open_result
    from ctc.validate import require_valid

    target = out if out is not None else default_target(result, kind)
    guard_export(target, kind, result, overwrite)  # before any work
    if kind == "geff":
        _require_geff()
    masks, tracks = open_result(result)
    require_valid(result, refused="not exported")  # the same CTC rules as evaluate
    first = masks.indices[0]
    table = export.track_table(masks, tracks, first)
    if kind == "csv":
        export.write_csv(table, target, overwrite, [result])
    elif kind == "geff":
        export.write_geff(table, masks, target, overwrite, first, [result])
    else:
        export.write_napari(table, masks, target, first, overwrite, [result])
    click.echo(f"{len(table['node_id'])} cells in {len(tracks)} tracks -> {target}"
               + (f" (graph: {target / export.GEFF_GROUP})" if kind == "geff" else ""))


def default_target(result: Path, kind: str) -> Path:
    """``RESULT.csv`` (``.geff.zarr``, ``_napari``) beside the result folder, named after the folder itself also
    when RESULT is ``.`` or ends with a slash."""
    folder = Path(os.path.abspath(result))
    if not folder.name:
        raise click.ClickException(f"{result}: give --out (no name to derive the output's from)")
    return folder.with_name(folder.name + SUFFIX[kind])


def guard_export(target: Path, kind: str, result: Path, overwrite: bool) -> None:
    """The rule of :mod:`ctc.writer` for the export's output, before the result is read."""
    from ctc import export
    from ctc.guard import Output
    from ctc.writer import check

    check([Output(target, {"csv": export.TABLE, "geff": export.GEFF_STORE, "napari": export.NAPARI_FOLDER}[kind])],
          [result], overwrite)


def _require_geff() -> None:
    from ctc import export
    from ctc.errors import CTCError

    try:
        export.require_geff("--to geff")
    except CTCError as err:
        raise click.ClickException(str(err)) from None
