"""Entry point of the `videofoundry` command: imports every module of `orchestration.commands`."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import typer

from orchestration import commands
from orchestration.cli_app import UserError, app
from orchestration.config import ConfigError
from orchestration.interrupted import exit_on_sigterm
from orchestration.workspace import WorkspaceError

for _module in pkgutil.iter_modules(commands.__path__):
    importlib.import_module(f"{commands.__name__}.{_module.name}")


def main() -> None:
    """Run the CLI; a `UserError` becomes a one-line message and exit code 2."""
    exit_on_sigterm()  # a SIGTERM unwinds: interrupted runs are marked failed, locks released
    try:
        code = app(standalone_mode=False)  # a `typer.Exit(n)` arrives here as n
        if isinstance(code, int) and code != 0:
            sys.exit(code)
    except (UserError, ConfigError, WorkspaceError) as error:
        typer.secho(f"error: {error}", fg=typer.colors.RED, err=True)
        sys.exit(2)
    except typer.Abort:
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as error:  # click's usage errors arrive here in non-standalone mode
        import click

        if isinstance(error, click.ClickException):
            error.show()
            sys.exit(error.exit_code)
        raise


__all__ = ["app", "main"]
