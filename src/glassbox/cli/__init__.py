"""The glassbox command line: a thin layer over the library.

Each command group lives in its own module and is registered here. Registering imports
only click and NumPy: torch, matplotlib and onnx are imported inside the commands that
use them, so ``glassbox --help`` and every usage error answer at once. User mistakes
raise :class:`glassbox.errors.GlassboxError` (or a click usage error); :func:`main`
prints them on one line and exits with status 2.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from glassbox import __version__
from glassbox.errors import GlassboxError

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="glassbox")
def cli() -> None:
    """glassbox: see inside ReLU networks."""


def show_progress(flag: bool | None) -> bool:
    """Progress bars: as asked by --progress/--no-progress, else only when stderr is a terminal."""
    if flag is not None:
        return flag
    return sys.stderr.isatty()


def threads_option(what: str, default: str) -> Callable[[F], F]:
    """The ``--threads N`` option (N >= 1, None when not given) every command shares.

    ``what`` says whose threads they are and ``default`` how many run when it is not given;
    the help adds that the count never follows the machine's load.
    """
    return click.option(
        "--threads",
        metavar="N",
        type=click.IntRange(min=1),
        default=None,
        help=f"{what} [default: {default}; never by load].",
    )


class FiniteRange(click.FloatRange):
    """A ``click.FloatRange`` that also refuses NaN and the infinities (NaN passes every bound)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{number} is not a finite number", param, ctx)
        return number


def _register() -> None:
    # Imported here so that each module can import ``cli`` without a cycle.
    from glassbox.cli import demo, extract, net, serve, sweep, toy, verify  # noqa: F401


def _usage_line(exc: click.UsageError) -> str:
    hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    return f"glassbox: error: {exc.format_message()}{hint}"


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI, mapping user errors to one line on stderr and exit 2."""
    _register()
    try:
        # Without standalone mode click returns a command's exit status instead of exiting.
        status = cli.main(args=argv, prog_name="glassbox", standalone_mode=False)
    except GlassboxError as exc:
        click.echo(f"glassbox: error: {exc}", err=True)
        return 2
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("glassbox: aborted", err=True)
        return 130
    except click.UsageError as exc:
        click.echo(_usage_line(exc), err=True)
        return 2
    except click.ClickException as exc:
        click.echo(f"glassbox: error: {exc.format_message()}", err=True)
        return 2
    except MemoryError as exc:  # sizes no check foresaw: still one line, never a traceback
        click.echo(f"glassbox: error: out of memory ({exc}); choose smaller sizes", err=True)
        return 2
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        click.echo(f"glassbox: error: {exc.strerror or exc}{where}", err=True)
        return 2
    return status if isinstance(status, int) else 0


if __name__ == "__main__":
    sys.exit(main())
