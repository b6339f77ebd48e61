"""A fingerprint of everything under a folder, to assert that a failed command changed nothing of the user's."""

from __future__ import annotations

import hashlib
from pathlib import Path


def tree_state(root: Path) -> dict[str, str]:
    """Relative path -> content hash of every file (``"<dir>"`` for folders), hidden entries included."""
    state: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        state[rel] = "<dir>" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return state
