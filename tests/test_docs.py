"""Every example of the README and of docs/*.md runs, in order, as printed.

A page's fenced ``bash`` and ``python`` blocks run one after the other in one fresh folder (the python blocks
share one namespace), so a block may use what the blocks before it wrote. A block preceded by the line
``<!-- not run: REASON -->`` is skipped (installs, Docker, clusters, GPUs: checked below); one preceded by
``<!-- needs: MODULE -->`` runs where that optional module is installed (CI installs the extras). Other fences
(``text``, ``yaml``) are not examples.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
FENCE = re.compile(r"(?:<!-- (?:not run: (?P<reason>[^>]*?)|needs: (?P<needs>[\w.]+)) -->\n[ \t]*)?"
                   r"```(?P<lang>[\w+-]*)\n(?P<code>.*?)```", re.S)


@dataclass
class Block:
    page: Path
    line: int
    lang: str
    code: str
    skip: str | None
    needs: str | None = None


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [Block(page, text.count("\n", 0, m.start("code")) + 1, m["lang"], m["code"], m["reason"], m["needs"])
            for m in FENCE.finditer(text)]


def _run_bash(block: Block, cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{block.page.name}:{block.line} failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}"


def _run_python(block: Block, namespace: dict[str, object]) -> None:
    exec(compile(block.code, f"{block.page.name}:{block.line}", "exec"), namespace)


@pytest.mark.parametrize("page", PAGES, ids=[p.relative_to(REPO).as_posix() for p in PAGES])
def test_examples_run_in_order(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    namespace: dict[str, object] = {"__name__": "__doc_example__"}
    for block in blocks(page):
        if block.skip is not None:
            assert block.skip.strip(), f"{page.name}:{block.line}: a skipped block needs its reason"
        elif block.needs is not None and importlib.util.find_spec(block.needs) is None:
            continue
        elif block.lang == "bash":
            _run_bash(block, tmp_path, env)
        elif block.lang == "python":
            _run_python(block, namespace)
    CHECKS.get(page.name, lambda *_: None)(tmp_path, namespace)


def _readme_results(folder: Path, namespace: dict[str, object]) -> None:
    from ctc import export
    from ctc.io import open_result
    from ctc.validate import validate_result

    for res in ("demo_data/01_RES", "movie_RES"):
        assert [v for v in validate_result(folder / res) if v.severity == "error"] == [], res
    table = export.read_csv(folder / "demo_data/01_RES.csv")
    assert export.tracks_from_table(table) == sorted(open_result(folder / "demo_data/01_RES")[1],
                                                      key=lambda t: t.label)


def _python_results(folder: Path, namespace: dict[str, object]) -> None:
    from ctc.validate import validate_result

    assert [v for v in validate_result(folder / "demo_RES") if v.severity == "error"] == []
    labels, tracks = namespace["labels"], namespace["tracks"]
    assert labels.shape == (5, 128, 128) and tracks.shape[1] == 4  # type: ignore[attr-defined]
    linked, own = namespace["linked"], namespace["own"]
    assert all(((a > 0) == (b > 0)).all() for a, b in zip(linked.labels, own))  # type: ignore[attr-defined]


CHECKS = {"README.md": _readme_results, "python.md": _python_results}


def test_skipped_examples_are_only_those_that_cannot_run_here() -> None:
    skipped = [(b.page.name, b.skip) for p in PAGES for b in blocks(p) if b.skip is not None]
    allowed = ("installs", "Docker", "cluster", "GPU", "SLURM", "torchrun")
    assert all(any(word in reason for word in allowed) for _, reason in skipped), skipped
    assert sum(1 for p in PAGES for b in blocks(p) if b.skip is None and b.lang in ("bash", "python")) >= 10


LINK = re.compile(r"!?\[[^\]]*\]\((?P<target>[^)\s]+)[^)]*\)")


def _prose(page: Path) -> str:
    """The page without its code blocks (a link in an example is code, not a link)."""
    return FENCE.sub("", page.read_text(encoding="utf-8"))


def test_relative_links_and_images_resolve() -> None:
    """Every link and image of the README and docs/ that is not a URL or an anchor names a file that exists,
    relative to its page (``images/x.png`` from docs/, ``docs/images/x.png`` from the README)."""
    broken = []
    for page in PAGES:
        for match in LINK.finditer(_prose(page)):
            target = match["target"].split("#")[0]
            if target and not re.match(r"[a-z][a-z0-9+.-]*:", target) and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(REPO)}: {match[0]}")
    assert broken == []


@pytest.mark.parametrize("page,kind", [("README.md", "readme"), ("docs/training.md", "training")])
def test_model_tables_agree_with_each_models_config(page: str, kind: str) -> None:
    """The model tables are `embedtrack models --markdown KIND` as it prints them from the bundled configs."""
    from embedtrack.models.model_table import model_table

    expected = model_table(kind=kind)
    text = (REPO / page).read_text(encoding="utf-8")
    header = expected.splitlines()[0]
    assert header in text, f"{page}: no model table (`embedtrack models --markdown {kind}` prints it)"
    lines = text[text.index(header):].splitlines()
    table = "\n".join(lines[:next((i for i, line in enumerate(lines) if not line.startswith("|")), len(lines))])
    assert table == expected, f"{page}: model table out of date; regenerate: embedtrack models --markdown {kind}"
