"""Shared click options and error handling for the embedtrack commands."""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import click

from ctc.errors import CTCError
from embedtrack.errors import EmbedTrackError

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(func: F) -> F:
    """Turn the package's user-facing errors into one clean CLI error line (exit code 1)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (CTCError, EmbedTrackError, FileNotFoundError, FileExistsError, NotADirectoryError) as err:
            raise click.ClickException(str(err)) from err

    return wrapper  # type: ignore[return-value]


def overwrite_option(func: F) -> F:
    return click.option("--overwrite", is_flag=True, help="Replace an existing result folder.")(func)


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
                            help="Crops (or frames) per network call.")(func)

    return decorate
