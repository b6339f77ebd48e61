"""Errors raised by the CTC format layer. Each message names the offending file and what is wrong."""

from __future__ import annotations


class CTCError(ValueError):
    """Base class: bad CTC input (folder, TIFF, man_track.txt) or an invalid result."""


class CTCFormatError(CTCError):
    """A file or folder does not follow the CTC layout or format."""


class CTCResultExistsError(CTCError, FileExistsError):
    """The result folder exists and overwriting was not requested."""


class CTCUnsafeOutputError(CTCError):
    """An output would overwrite an input, or replace a folder that is not a result of ours."""


def escape_name(text: object) -> str:
    """``text`` (a file name, or a message naming files) on one line: line breaks, tabs and other control
    characters are written as escapes (``\\n``, ``\\x1b``), so that a name holding a newline cannot forge a second
    ``Error:`` line, nor a terminal escape change the screen."""
    out = []
    for char in str(text):
        if char.isprintable() or char == " ":
            out.append(char)
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)
