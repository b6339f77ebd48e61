"""`embedtrack models`: list the bundled models and their provenance."""

from __future__ import annotations

import click

from embedtrack.cli._common import handle_errors


@click.command("models")
@handle_errors
def command() -> None:
    """List the bundled models: name, preset, training data, validation IoU."""
    from embedtrack.registry import bundled_models, read_config

    models = bundled_models()
    if not models:
        click.echo("No bundled models.")
        return
    for name, folder in models.items():
        cfg = read_config(folder)
        tr = cfg.training
        data = tr.get("data", tr.get("dataset", "?"))
        click.echo(f"{name}\n  preset: {cfg.preset}  widths: {cfg.architecture.get('widths')}  "
                   f"min mask size: {cfg.inference.min_size} px\n  trained on: {data}\n"
                   f"  validation IoU: {tr.get('val_iou', '?')} (epoch {tr.get('best_epoch', '?')}), {tr.get('date', '?')}\n"
                   f"  command: {tr.get('command', '?')}\n  folder: {folder}")
