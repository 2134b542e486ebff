"""The `videofoundry` Typer application object.

Commands live in `orchestration/commands/<topic>.py`; each module decorates functions with
`@app.command()` on this shared object. `orchestration.cli` imports every command module, so a new
topic only adds a file.
"""

from __future__ import annotations

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
