"""The `videofoundry` Typer application object and the conventions every command gets from it.

Commands live in `orchestration/commands/<topic>.py`; each module decorates functions with
`@app.command()` on this shared object. `orchestration.cli` imports every command module, so a new
topic only adds a file.

Conventions (README, "CLI"), applied here once for every command:
- Exit codes: 0 ok, 1 runtime failure, 2 bad input or usage. A failure prints one line
  `error: …` on stderr; the traceback only with `--verbose`.
- Bad input is `UserError`, or any exception of our packages that subclasses ValueError or
  LookupError (e.g. `ConfigError`, `PresetError`, `InvalidRequestError`), a pydantic
  ValidationError, or a path the user named that is missing, a folder/file mix-up or unreadable
  (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError). Commands raise
  these as they are; no per-command try/except is needed.
- Runtime failure is `CommandFailure` or anything else (our RuntimeError subclasses, bugs).
- Global options `--version`, `-v/--verbose`, `-q/--quiet` (orchestration.cli_logging).
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.exceptions import NoArgsIsHelpError, UsageError  # typer 0.29 vendors click
from typer.core import TyperGroup
from typer.exceptions import TyperException

from orchestration.cli_logging import OUR_PACKAGES, Verbosity, configure_logging, release_logging, verbosity

MAX_SEED = 2**63 - 1  # torch.Generator.manual_seed takes a signed 64-bit integer


class UserError(Exception):
    """Bad input from the user: printed as one line, exit code 2, no traceback."""


class CommandFailure(Exception):
    """The command ran and failed (a materialization, a missing system tool): one line, exit 1."""


_BAD_PATH = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def _defined_by_us(error: BaseException) -> bool:
    return any(cls.__module__.split(".")[0] in OUR_PACKAGES for cls in type(error).__mro__)


def exit_code_for(error: BaseException) -> int:
    """2 for bad input or usage, 1 for a runtime failure (the module docstring lists which is which)."""
    from pydantic import ValidationError

    if isinstance(error, (UserError, UsageError, ValidationError, *_BAD_PATH)):
        return 2
    if isinstance(error, TyperException):
        return error.exit_code
    return 2 if _defined_by_us(error) and isinstance(error, (ValueError, LookupError)) else 1


def error_line(error: BaseException) -> str:
    """The one-line message after `error: ` for `error`."""
    from pydantic import ValidationError

    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in error.errors()
        )
    if isinstance(error, OSError) and error.strerror and error.filename is not None:
        return f"{error.filename}: {error.strerror}"
    if isinstance(error, TyperException):
        text = error.format_message()
        ctx = getattr(error, "ctx", None)
        return f"{text} (see '{ctx.command_path} --help')" if ctx is not None else text
    text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    if _defined_by_us(error) or exit_code_for(error) == 2:  # an expected failure: its message says it
        return text or type(error).__name__
    hint = "" if verbosity() is Verbosity.VERBOSE else " (run with --verbose for the traceback)"
    return f"{type(error).__name__}: {text}{hint}" if text else f"{type(error).__name__}{hint}"


def report_failure(error: BaseException) -> int:
    """Print `error` as the convention says (traceback first with --verbose); return the exit code."""
    if isinstance(error, NoArgsIsHelpError):
        error.show()
        return 2
    if verbosity() is Verbosity.VERBOSE:
        traceback.print_exception(error, file=sys.stderr)
    typer.secho(f"error: {error_line(error)}", fg=typer.colors.RED, err=True)
    return exit_code_for(error)


class _ConventionGroup(TyperGroup):
    """The root command: runs the command, then maps any exception to its message and exit code."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            outcome = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = outcome if isinstance(outcome, int) else 0  # a `typer.Exit(n)` arrives as n
        except typer.Abort:
            typer.echo("aborted", err=True)
            code = 130
        except Exception as error:
            code = report_failure(error)
        finally:
            release_logging()
        if standalone_mode:
            sys.exit(code)
        return code


app = typer.Typer(
    name="videofoundry",
    cls=_ConventionGroup,
    help="VideoFoundry: raw video → curated tiers → captions → VAE → DiT → evaluation → demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
serve_app = typer.Typer(help="Start one of the web apps (demo, raters).", no_args_is_help=True)
app.add_typer(serve_app, name="serve")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"videofoundry {package_version('videofoundry')}")
        raise typer.Exit()


@app.callback()
def global_options(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Debug logging, and tracebacks for failures.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Warnings and errors only; no progress bars.")
    ] = False,
    _version: Annotated[
        bool,
        typer.Option("--version", help="Print the version and exit.", is_eager=True, callback=_print_version),
    ] = False,
) -> None:
    """VideoFoundry: raw video → curated tiers → captions → VAE → DiT → evaluation → demo."""
    if verbose and quiet:
        raise UsageError("--verbose and --quiet exclude each other")
    configure_logging(Verbosity.VERBOSE if verbose else Verbosity.QUIET if quiet else Verbosity.NORMAL)


@contextmanager
def user_errors(*kinds: type[Exception]) -> Iterator[None]:
    """Inside the block, an exception of `kinds` (a domain's bad-input error) becomes a `UserError`."""
    try:
        yield
    except kinds as error:
        raise UserError(str(error)) from error


def output_file(path: Path, option: str, suffix: str | None = None) -> Path:
    """`path` once it can be written as a file: not a folder, no ancestor that is a file, and the
    `suffix` (e.g. ".mp4") if given; otherwise a `UserError` naming `option`. Checked before any work."""
    if suffix is not None and path.suffix.lower() != suffix:
        raise UserError(f"{option} {path}: the output must be a {suffix} file")
    if path.is_dir():
        raise UserError(f"{option} {path} is a folder; give a file path")
    blocker = next((parent for parent in path.parents if parent.exists() and not parent.is_dir()), None)
    if blocker is not None:
        raise UserError(f"{option} {path}: {blocker} is a file, not a folder")
    return path


def platform_config(home: Path | None = None, profile: str | None = None, config_file: Path | None = None):
    """The platform config for a command's --home/--profile/--config options; errors become `UserError`."""
    from orchestration.config import ConfigError, load_config
    from orchestration.workspace import Workspace, WorkspaceError

    try:
        config = load_config(profile, config_file, home=home)
        Workspace.at(config.home).ensure()
    except (ConfigError, WorkspaceError) as error:
        raise UserError(str(error)) from error
    return config


HomeOption = Annotated[
    Path | None,
    typer.Option("--home", help="Workspace folder (default: $VIDEOFOUNDRY_HOME or ./.videofoundry)."),
]
ProfileOption = Annotated[
    str | None,
    typer.Option(
        "--profile", help="Configuration profile: tiny (CPU, default), demo (tiny, trained longer) or paper."
    ),
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML file overriding the profile's settings.")
]
ResumeOption = Annotated[
    bool,
    typer.Option(
        "--resume/--restart",
        help="Continue from the latest checkpoint when there is one (default), or delete the checkpoints "
        "and start over (the only way to delete them).",
    ),
]
DataVersionOption = Annotated[
    str | None, typer.Option("--data-version", help="Data version recorded in MLflow and the registry.")
]
LockWaitOption = Annotated[
    float,
    typer.Option(
        "--wait", min=0, help="Seconds to wait for another command using this workspace (0: fail at once)."
    ),
]
