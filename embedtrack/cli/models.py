"""`embedtrack models`: list the bundled models and their provenance."""

from __future__ import annotations

import click

from embedtrack.cli._common import handle_errors


@click.command("models")
@click.option("--markdown", type=click.Choice(["readme", "training"]), default=None,
              help="Print the model table of README.md or of docs/training.md instead (every figure from the "
                   "models' config.json).")
@handle_errors
def command(markdown: str | None) -> None:
    """List the bundled models: name, what it is for, preset, training data, validation IoU."""
    from embedtrack.models.model_table import model_table, use_of
    from embedtrack.models.registry import bundled_models, read_config

    if markdown:
        click.echo(model_table(kind=markdown))
        return

    models = bundled_models()
    if not models:
        click.echo("No bundled models.")
        return
    for name, folder in models.items():
        cfg = read_config(folder)
        tr = cfg.training
        data = tr.get("data", tr.get("dataset", "?"))
        click.echo(f"{name}\n  for: {use_of(name)}\n  preset: {cfg.preset}  widths: {cfg.architecture.get('widths')}  "
                   f"min mask size: {cfg.inference.min_size} px\n  trained on: {data}\n"
                   f"  validation IoU: {tr.get('val_iou', '?')} (epoch {tr.get('best_epoch', '?')}), {tr.get('date', '?')}\n"
                   f"  command: {tr.get('command', '?')}\n  folder: {folder}")
