"""Errors raised by the CTC format layer. Each message names the offending file and what is wrong."""

from __future__ import annotations

import unicodedata


class CTCError(ValueError):
    """Base class: bad CTC input (folder, TIFF, man_track.txt) or an invalid result."""


class CTCFormatError(CTCError):
    """A file or folder does not follow the CTC layout or format."""


class CTCResultExistsError(CTCError, FileExistsError):
    """The result folder exists and overwriting was not requested."""


class CTCUnsafeOutputError(CTCError):
    """An output would overwrite an input, or replace a folder that is not a result of ours."""


def one_line(message: str) -> str:
    """``message`` as one printable line: control characters (newline, carriage return, escape, …) and line
    separators, which a file name may hold, are shown escaped (``\\n``), so a name cannot forge a second
    ``Error:`` line or move the cursor."""
    return "".join(_escaped(c) if unicodedata.category(c) in ("Cc", "Zl", "Zp") and c != "\t" else c
                   for c in message)


def _escaped(char: str) -> str:
    return repr(char)[1:-1] if char not in "\u2028\u2029" else f"\\u{ord(char):04x}"
