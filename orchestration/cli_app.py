"""The `videofoundry` Typer application object.

Commands live in `orchestration/commands/<topic>.py`; each module decorates functions with
`@app.command()` on this shared object. `orchestration.cli` imports every command module, so a new
topic only adds a file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="videofoundry",
    help="VideoFoundry: raw video → curated tiers → captions → VAE → DiT → evaluation → demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
serve_app = typer.Typer(help="Start one of the web apps (demo, raters).", no_args_is_help=True)
app.add_typer(serve_app, name="serve")


class UserError(Exception):
    """Bad input from the user: printed as one line, exit code 2, no traceback."""


@contextmanager
def user_errors(*kinds: type[Exception]) -> Iterator[None]:
    """Inside the block, an exception of `kinds` (a domain's bad-input error) becomes a `UserError`."""
    try:
        yield
    except kinds as error:
        raise UserError(str(error)) from error


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
    str | None, typer.Option("--profile", help="Configuration profile: tiny (CPU, default) or paper.")
]
ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML file overriding the profile's settings.")
]
ResumeOption = Annotated[
    bool, typer.Option("--resume/--restart", help="Continue from the latest checkpoint, or start over.")
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
