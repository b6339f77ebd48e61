"""The options of the whole command line, ``-v``/``--verbose``, ``-q``/``--quiet`` and ``--debug``: accepted
before the command name (``embedtrack -q run …``) and after it (``embedtrack run … -q``).

:func:`output_options` decorates the group's function, which receives the values; the group puts the same
options on every command it loads, where a value given is merged into the group's and applied at once (the
group's function has already run when a command's options are read). :func:`apply_output` turns the progress
bars off for ``-q`` and gives the log level.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import click

F = TypeVar("F")

OPTIONS: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = (
    (("-v", "--verbose"), {"count": True, "help": "More log output (-v info is default, -vv debug)."}),
    (("-q", "--quiet"), {"is_flag": True, "help": "Only warnings and errors; no progress bars."}),
    (("--debug",), {"is_flag": True, "help": "Show the full traceback of an unexpected error."}),
)
NAMES = ("verbose", "quiet", "debug")


def output_options(target: F) -> F:
    """Add ``-v``, ``-q`` and ``--debug`` to the group's function (as parameters) or to a loaded command (merged
    into the group's values, see the module docstring); a command that has them already is left as it is."""
    on_command = isinstance(target, click.Command)
    if on_command and any(p.name in NAMES for p in target.params):  # type: ignore[attr-defined]
        return target
    extra: dict[str, Any] = {"expose_value": False, "callback": _merge} if on_command else {}
    for decls, attrs in reversed(OPTIONS):
        target = click.option(*decls, **attrs, **extra)(target)  # type: ignore[type-var]
    return target


def _merge(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A value given after the command name joins the group's (``-v`` counts add up) and takes effect now."""
    root = ctx.find_root()
    if value and root is not ctx and param.name is not None:
        earlier = root.params.get(param.name) or 0
        root.params[param.name] = earlier + value if param.name == "verbose" else value
        logging.getLogger().setLevel(apply_output(root))
    return value


def apply_output(root: click.Context) -> int:
    """Turn the progress bars off for the group's current ``-q``; returns the log level its current ``-v``, ``-q``
    and ``--debug`` values ask for."""
    from ctc import progress

    quiet, verbose, debug = (root.params.get(name) for name in ("quiet", "verbose", "debug"))
    progress.QUIET = bool(quiet)
    return logging.WARNING if quiet else (logging.DEBUG if (verbose or 0) >= 1 or debug else logging.INFO)


class OneLine(logging.Filter):
    """Log messages on one line: control characters (a newline in a file name) escaped, so that a name cannot
    forge another log or ``Error:`` line (:func:`ctc.errors.escape_name`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from ctc.errors import escape_name

        message = record.getMessage()
        if not message.isprintable():
            record.msg, record.args = escape_name(message), None
        return True


def start_output(ctx: click.Context) -> None:
    """Once per command line: the log format, the settings of :func:`apply_output`, log messages on one line
    (:class:`OneLine`), and log records and Python warnings written above a running bar instead of through it
    (tqdm's logging redirect); everything is put back when the command ends."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    from ctc import progress

    root_logger = logging.getLogger()
    level = root_logger.level
    logging.basicConfig(level=apply_output(ctx), format="%(levelname)s %(name)s: %(message)s")
    one_line = OneLine()
    for handler in root_logger.handlers:
        handler.addFilter(one_line)
        ctx.call_on_close(lambda handler=handler: handler.removeFilter(one_line))
    logging.captureWarnings(True)
    ctx.with_resource(logging_redirect_tqdm())
    ctx.call_on_close(lambda: setattr(progress, "QUIET", False))
    ctx.call_on_close(lambda: logging.captureWarnings(False))
    ctx.call_on_close(lambda: root_logger.setLevel(level))
