"""The README's "Use it from Python" snippet runs as printed (bundled model, small synthetic sequence)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _snippet() -> str:
    section = README.read_text().split("## Use it from Python", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1
    return blocks[0]


def test_python_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
                             ) -> None:
    from ctc.validate import validate_result

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    namespace: dict[str, object] = {}
    exec(compile(_snippet(), str(README), "exec"), namespace)
    out = capsys.readouterr().out
    assert re.search(r"^\d+ tracks, \d+ daughters$", out, flags=re.M)
    assert [v for v in validate_result(tmp_path / "demo_RES") if v.severity == "error"] == []
    labels, tracks = namespace["labels"], namespace["tracks"]
    assert labels.shape == (5, 128, 128) and tracks.shape[1] == 4  # type: ignore[attr-defined]
    linked, own = namespace["linked"], namespace["own"]
    assert all(((a > 0) == (b > 0)).all() for a, b in zip(linked.labels, own))  # type: ignore[attr-defined]
