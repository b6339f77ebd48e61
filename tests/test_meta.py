"""LICENSE, CITATION.cff and `python -m embedtrack` agree with the package."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

import embedtrack

REPO = Path(__file__).resolve().parents[1]


def test_license_and_citation_match_the_package() -> None:
    yaml = pytest.importorskip("yaml")
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    assert setup["metadata"]["license"] == "BSD-3-Clause"
    assert (REPO / "LICENSE").read_text().startswith("BSD 3-Clause License\n\nCopyright (c) ")
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["version"] == embedtrack.__version__ == setup["metadata"]["version"]
    assert citation["license"] == "BSD-3-Clause"
    assert [a["family-names"] for a in citation["preferred-citation"]["authors"]] == ["Löffler", "Mikut"]


def test_python_m_embedtrack_is_the_command() -> None:
    done = subprocess.run([sys.executable, "-m", "embedtrack", "--version"], capture_output=True, text=True,
                          timeout=120, cwd=REPO)
    assert done.returncode == 0 and done.stdout.startswith("embedtrack, version " + embedtrack.__version__)
