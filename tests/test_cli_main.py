"""The CLI entry point's exit statuses: 0 success, 1 a command's own failure, 2 user error."""

import click

from glassbox.cli import cli, main
from glassbox.errors import GlassboxError


def _with_command(name, body):
    cli.add_command(click.Command(name, callback=body))


def test_a_commands_exit_status_reaches_the_caller():
    def fail() -> None:
        raise click.exceptions.Exit(1)

    _with_command("_fails", fail)
    try:
        assert main(["_fails"]) == 1
    finally:
        cli.commands.pop("_fails")


def test_user_errors_are_one_line_and_exit_2(capsys):
    def bad() -> None:
        raise GlassboxError("the thing is wrong; pass --right")

    _with_command("_bad", bad)
    try:
        assert main(["_bad"]) == 2
    finally:
        cli.commands.pop("_bad")
    err = capsys.readouterr().err
    assert err == "glassbox: error: the thing is wrong; pass --right\n"


def test_unknown_option_is_a_usage_error():
    assert main(["net", "new", "--bogus"]) == 2
