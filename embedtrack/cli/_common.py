"""Shared click options and error handling for the embedtrack commands."""

from __future__ import annotations

import errno
import functools
from typing import Any, Callable, TypeVar

import click

from ctc.errors import CTCError, escape_name
from embedtrack.errors import EmbedTrackError

F = TypeVar("F", bound=Callable[..., Any])


OS_HINTS = {
    errno.ENOSPC: "the disk is full; free some space and run again (nothing half-written was kept)",
    errno.EDQUOT: "the disk quota is used up; free some space and run again",
    errno.EROFS: "the file system is read-only; choose an output on a writable one",
    errno.EACCES: "permission denied; choose an output you can write to, or change its permissions",
    errno.EPERM: "operation not permitted; choose an output you can write to",
}


def os_error_message(err: OSError) -> str:
    """One line for an operating-system error: the file, what went wrong, and what to do."""
    if err.errno is None:  # raised with a message of ours, e.g. FileExistsError("<path>: exists; ...")
        return str(err)
    where = err.filename if err.filename is not None else "embedtrack"
    what = err.strerror or type(err).__name__
    hint = OS_HINTS.get(err.errno or -1)
    return f"{where}: {what}" + (f" ({hint})" if hint else "")


def _debug_requested() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.find_root().params.get("debug"))


def handle_errors(func: F) -> F:
    """Turn every error into one clean CLI error line (exit code 1); the package's own errors say what is wrong
    with which file, anything unexpected says its type and points to ``--debug`` for the traceback. Control
    characters in the message (a file name holding a newline) are escaped (:func:`ctc.errors.escape_name`)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except click.ClickException as err:
            err.message = escape_name(err.message)
            raise
        except (click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (CTCError, EmbedTrackError) as err:
            raise click.ClickException(escape_name(err)) from err
        except OSError as err:
            if _debug_requested():
                raise
            raise click.ClickException(escape_name(os_error_message(err))) from err
        except Exception as err:
            if _debug_requested():
                raise
            raise click.ClickException(escape_name(f"unexpected {type(err).__name__}: {err} "
                                                   "(run `embedtrack --debug ...` for the traceback)")) from err

    return wrapper  # type: ignore[return-value]


def overwrite_option(func: F) -> F:
    return click.option("--overwrite", is_flag=True, help="Replace existing outputs, each only when it is what "
                                                          "this command writes (see docs/safety.md).")(func)


def device_option(func: F) -> F:
    return click.option(
        "--device",
        type=click.Choice(["auto", "cpu", "cuda"]),
        default="auto",
        show_default=True,
        help="Where the network runs; auto picks CUDA when present.",
    )(func)


def batch_size_option(default: int) -> Callable[[F], F]:
    def decorate(func: F) -> F:
        return click.option("--batch-size", type=click.IntRange(min=1), default=default, show_default=True,
                            help="Crops (or frames) per network call, at most.")(func)

    return decorate


def inference_options(func: F) -> F:
    """One option per :class:`~embedtrack.models.inference_config.InferenceConfig` value (``--seed-threshold``,
    ``--min-size``, ``--min-daughter-ratio``, …), each defaulting to the model's own value; the command receives
    them as one ``inference`` dict of the options given."""
    import dataclasses
    import typing

    from embedtrack.models.inference_config import InferenceConfig

    hints = typing.get_type_hints(InferenceConfig)
    names = [f.name for f in dataclasses.fields(InferenceConfig)]

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in names}
        return func(*args, inference={k: v for k, v in given.items() if v is not None}, **kwargs)

    for f in reversed(dataclasses.fields(InferenceConfig)):
        flag = "--" + f.name.replace("_", "-")
        help_text = f"{f.metadata['help']} [default: the model's]"
        if hints[f.name] is bool:
            wrapper = click.option(f"{flag}/--no-{flag[2:]}", f.name, default=None, help=help_text)(wrapper)
        else:
            kind = click.INT if hints[f.name] is int else click.FLOAT
            wrapper = click.option(flag, f.name, type=kind, default=None, help=help_text)(wrapper)
    return wrapper  # type: ignore[return-value]


class AppearanceSetting(click.ParamType):
    """``auto``, ``off`` or a number (:func:`embedtrack.inference.appearance.check_setting`)."""

    name = "auto|off|NUMBER"

    def __init__(self, setting: str) -> None:
        self.setting = setting

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        from embedtrack.inference.appearance import check_setting
        from embedtrack.errors import EmbedTrackError

        try:
            return check_setting(value, self.setting)
        except EmbedTrackError as err:
            self.fail(str(err), param, ctx)


def appearance_options(func: F) -> F:
    """``--cell-size`` and ``--denoise``: the appearance stage (:mod:`embedtrack.inference.appearance`)."""
    func = click.option("--denoise", type=AppearanceSetting("denoise"), default="auto", show_default=True,
                        help="Smooth the frames with a Gaussian of this sigma (pixels) before the network; auto: "
                             "only when the sequence's SNR is clearly below the model's training SNR.")(func)
    return click.option("--cell-size", type=AppearanceSetting("cell_size"), default="auto", show_default=True,
                        help="Typical cell diameter in pixels of these frames; they are resampled so the cells "
                             "have the model's training size. auto: estimated on the first frame (no resampling "
                             "within +-20 %).")(func)  # type: ignore[return-value]
