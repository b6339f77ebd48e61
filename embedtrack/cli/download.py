"""`embedtrack download DATASET --root DIR`: fetch a CTC dataset zip, resumably, and unpack it."""

from __future__ import annotations

from pathlib import Path

import click

from embedtrack.cli._common import handle_errors
from embedtrack.io.download import DEFAULT_BASE_URL, KINDS, KNOWN_DATASETS, download_dataset


@click.command("download", epilog="Known datasets: " + ", ".join(KNOWN_DATASETS) + ".")
@click.argument("dataset")
@click.option(
    "--root",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder that receives <DATASET>/01, 01_GT, 02, ...",
)
@click.option(
    "--kind",
    type=click.Choice(list(KINDS)),
    default="training",
    show_default=True,
    help="training: sequences with ground truth; challenge: the CTC test sequences (no ground truth).",
)
@click.option("--keep-zip", is_flag=True, help="Keep <DATASET>-<kind>.zip in the root after unpacking.")
@click.option(
    "--no-checksum",
    is_flag=True,
    help="Do not compare the zip with its known SHA-256 (e.g. after the CTC re-released a dataset).",
)
@click.option(
    "--retries", type=click.IntRange(min=0), default=3, show_default=True,
    help="Resume attempts after a broken transfer.",
)
@click.option(
    "--base-url", default=DEFAULT_BASE_URL, show_default=True, help="Server (or mirror) with the CTC layout."
)
@click.option("--overwrite", is_flag=True, help="Replace an existing ROOT/DATASET folder (only one holding nothing "
                                                "but the sequence folders NN, NN_GT, NN_ST).")
@click.option("--max-unpacked-gb", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Refuse an archive that unpacks to more [default: $EMBEDTRACK_MAX_UNPACKED_GB or 64].")
@handle_errors
def command(
    dataset: str,
    root: Path,
    kind: str,
    keep_zip: bool,
    no_checksum: bool,
    retries: int,
    base_url: str,
    overwrite: bool,
    max_unpacked_gb: float | None,
) -> None:
    """Download the CTC dataset DATASET and unpack it into ROOT/DATASET.

    An interrupted download is resumed on the next run (the partial file stays in ROOT as *.zip.part).
    """
    target = download_dataset(
        dataset,
        root,
        kind,
        base_url=base_url,
        overwrite=overwrite,
        keep_zip=keep_zip,
        verify_checksum=not no_checksum,
        retries=retries,
        max_unpacked_gb=max_unpacked_gb,
    )
    sequences = sorted(p.name for p in target.iterdir() if p.is_dir())
    click.echo(f"{target}: {', '.join(sequences)}")
