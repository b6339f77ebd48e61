"""Counts in messages: ``counted(1, "division")`` -> ``1 division``, ``counted(2, "division")`` -> ``2 divisions``."""

from __future__ import annotations


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun, singular for exactly one (``plural`` for irregular nouns, default ``noun + "s"``).

    >>> counted(1, "sequence"), counted(0, "worker"), counted(3, "cell", "cells")
    ('1 sequence', '0 workers', '3 cells')
    """
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
