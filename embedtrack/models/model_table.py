"""The bundled models as Markdown tables, every figure read from their ``config.json``.

``embedtrack models --markdown readme`` prints README.md's model table, ``--markdown training`` the one of
docs/training.md (a test compares each with its document), so after a model is retrained the tables are
regenerated, never edited by hand. :data:`USES` says what each model is
for (the only words not taken from a config); the napari widget shows the same words.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: What each bundled model is for, by name: the first column of the table and the widget's model note.
USES: dict[str, str] = {
    "fluo-nuclei-generalist": "fluorescent nuclei, unsure which model",
    "Fluo-N2DH-SIM+": "Fluo-N2DH-SIM+ (simulated nuclei)",
    "Fluo-N2DH-GOWT1": "Fluo-N2DH-GOWT1, other bright nuclei",
    "Fluo-C2DL-MSC": "Fluo-C2DL-MSC (large cells, cytoplasm)",
    "PhC-C2DL-PSC": "phase contrast, small cells",
    "synth-fluorescence": "synthetic nuclei (`embedtrack synth --preset fluo-moderate`, the demo)",
    "synth-brightfield": "brightfield (no real data here)",
}

TRAINING_HEADER = "| name | trained on | validation IoU (best epoch) | training |\n|---|---|---|---|"
HEADER = ("| your data | model | trained on | val IoU | SEG / TRA / DET at the calibrated thresholds | calibrated on |\n"
          "|---|---|---|---|---|---|")


def use_of(name: str) -> str:
    """What model ``name`` is for (:data:`USES`), or that it is the user's own."""
    return USES.get(name, "your own model")


def _clause(text: str) -> str:
    """The main clause of a provenance text: up to its first parenthesis or semicolon."""
    return text.split(" (")[0].split(";")[0].strip()


def calibrated_scores(calibration: dict[str, Any]) -> dict[str, float]:
    """SEG, DET (and TRA when linking was calibrated too) of the row of ``calibration.table`` at its best
    settings; empty when the model was not calibrated."""
    best, rows = calibration.get("best", {}), calibration.get("table", [])
    for stage in ("link", "cluster"):
        for row in rows:
            keys = [k for k in row if k in best]
            if row.get("stage") == stage and keys and all(row[k] == best[k] for k in keys):
                return {m: row[m] for m in ("SEG", "TRA", "DET") if m in row}
    return {}


def _figure(scores: dict[str, float], metric: str) -> str:
    return f"{scores[metric]:.3f}" if metric in scores else "–"


def table_row(name: str, config: dict[str, Any]) -> str:
    """One Markdown row for the model ``name`` from its parsed ``config.json``."""
    training, calibration = config.get("training", {}), config.get("calibration", {})
    scores = calibrated_scores(calibration)
    figures = " / ".join(_figure(scores, m) for m in ("SEG", "TRA", "DET")) if scores else "–"
    val = training.get("val_iou")
    trained_on = _clause(str(training.get("data", training.get("dataset", "?"))))
    cells = [use_of(name), f"`{name}`", trained_on, "–" if val is None else f"{val:.3f}", figures,
             _clause(str(calibration.get("data", "–"))) if scores else "–"]
    return "| " + " | ".join(cells) + " |"


def training_row(name: str, config: dict[str, Any]) -> str:
    """One row of docs/training.md's table: the full data provenance, validation IoU and training time."""
    training = config.get("training", {})
    val = training.get("val_iou")
    cells = [f"`{name}`", str(training.get("data", training.get("dataset", "?"))),
             "–" if val is None else f"{val:.3f} ({training.get('best_epoch', '?')})",
             str(training.get("train_time", "–"))]
    return "| " + " | ".join(cell.replace("|", "/") for cell in cells) + " |"


def model_table(folders: dict[str, Path] | None = None, kind: str = "readme") -> str:
    """The Markdown table (``readme`` or ``training``) of ``folders`` (default: the bundled models), in the
    order of :data:`USES`."""
    from embedtrack.models.registry import CONFIG_NAME, bundled_models, read_json_object

    folders = bundled_models() if folders is None else folders
    order = sorted(folders, key=lambda n: (list(USES).index(n) if n in USES else len(USES), n))
    header, row = (HEADER, table_row) if kind == "readme" else (TRAINING_HEADER, training_row)
    return "\n".join([header, *(row(name, read_json_object(folders[name] / CONFIG_NAME)) for name in order)])
