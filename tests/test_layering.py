"""The package's layering: each folder is one stage and imports run one way only.

``cli`` -> ``io`` / ``napari`` -> ``training`` -> ``inference`` -> ``models`` -> ``errors`` / ``openmp`` /
``_version`` -> ``ctc``: no module imports a module of a higher layer, nor one of another folder of its own layer
(``io`` and ``napari`` stay apart); ``ctc`` imports neither ``embedtrack`` nor torch; the package's ``__init__``
(the API, whose names are imported on first use) and ``__main__`` sit on top. The import graph (with lazy imports)
is read from the source by :mod:`tests.test_import_graph`, which also checks that there are no loops. The maps
(each subpackage's ``__init__`` docstring and ``docs/design.md``) name every module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.test_import_graph import REPO, discover_modules, import_graph, imported_modules

#: layer -> rank; a module may import its own layer and lower ranks of other layers only
RANKS = {"ctc": 0, "base": 1, "embedtrack.models": 2, "embedtrack.inference": 3, "embedtrack.training": 4,
         "embedtrack.io": 5, "embedtrack.napari": 5, "embedtrack.cli": 6, "embedtrack": 7}
BASE = {"embedtrack.errors", "embedtrack.openmp", "embedtrack._version"}
TOP = {"embedtrack", "embedtrack.__main__"}
STAGES = ("models", "inference", "training", "io")  # the folders whose __init__ docstring is a generated map
MAX_FLAT = 8
MAX_LINES = 450


def layer(module: str) -> str | None:
    """The layer of a module of ``ctc`` or ``embedtrack``; None for a module outside every layer."""
    if module == "ctc" or module.startswith("ctc."):
        return "ctc"
    if module in BASE:
        return "base"
    if module in TOP:
        return "embedtrack"
    folder = ".".join(module.split(".")[:2])
    return folder if folder in RANKS and folder != "embedtrack" else None


def wrong_way(graph: dict[str, set[str]]) -> list[str]:
    """Every import against the layering, as ``a -> b (layer of a -> layer of b)``."""
    found = []
    for module, targets in sorted(graph.items()):
        for target in sorted(targets):
            here, there = layer(module), layer(target)
            if here is None or there is None:
                continue
            if RANKS[there] > RANKS[here] or (RANKS[there] == RANKS[here] and there != here):
                found.append(f"{module} -> {target} ({here} -> {there})")
    return found


def test_every_module_has_a_layer_and_few_sit_at_the_top() -> None:
    outside = sorted(m for m in discover_modules() if layer(m) is None)
    assert outside == [], f"modules in no layer (put them in a stage folder): {outside}"
    flat = sorted(p.name for p in (REPO / "embedtrack").glob("*.py"))
    assert len(flat) <= MAX_FLAT, f"{len(flat)} modules directly in embedtrack/: {flat}"


def test_no_import_runs_upward_or_sideways() -> None:
    assert wrong_way(import_graph()) == []


def test_an_upward_import_written_into_a_module_is_caught(tmp_path: Path) -> None:
    modules = discover_modules()
    known = set(modules)
    source = modules["embedtrack.models.registry"].read_text(encoding="utf-8")
    edited = tmp_path / "registry.py"
    edited.write_text(source + "\n\ndef _late() -> None:\n    from embedtrack.inference.tracker import Tracker\n",
                      encoding="utf-8")
    graph = import_graph()
    before = set(wrong_way(graph))
    graph["embedtrack.models.registry"] = imported_modules("embedtrack.models.registry", edited, known)
    assert sorted(set(wrong_way(graph)) - before) == [
        "embedtrack.models.registry -> embedtrack.inference.tracker (embedtrack.models -> embedtrack.inference)"]
    sideways = {"embedtrack.io.batch": {"embedtrack.napari._reader"}, "embedtrack.inference.tracker":
                {"embedtrack.training.data"}, "ctc.io": {"embedtrack.errors"}}
    assert len(wrong_way(sideways)) == 3


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree)
              if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module}
    return {name.split(".")[0] for name in names}


def test_ctc_imports_neither_embedtrack_nor_torch() -> None:
    bad = {str(p.relative_to(REPO)): sorted(imports_of(p) & {"embedtrack", "torch"})
           for p in sorted((REPO / "ctc").rglob("*.py"))}
    assert {k: v for k, v in bad.items() if v} == {}


def test_no_module_is_over_450_lines() -> None:
    long = {str(p.relative_to(REPO)): n for package in ("ctc", "embedtrack")
            for p in sorted((REPO / package).rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"split these where they hold two jobs: {long}"


@pytest.mark.parametrize("folder", STAGES)
def test_maps_name_every_module(folder: str) -> None:
    doc = ast.get_docstring(ast.parse((REPO / "embedtrack" / folder / "__init__.py").read_text(encoding="utf-8")))
    assert doc and "May import:" in doc
    design = (REPO / "docs" / "design.md").read_text(encoding="utf-8")
    for path in sorted((REPO / "embedtrack" / folder).glob("*.py")):
        if path.stem != "__init__":
            assert f"``{path.stem}``" in doc, f"embedtrack/{folder}/__init__.py: its map lacks {path.stem}"
            assert f" {path.name} " in design, f"docs/design.md: the tree lacks {folder}/{path.name}"
