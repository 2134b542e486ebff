"""Human-evaluation commands: `serve raters`, `eval-report`, `eval-rater`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestration.cli_app import (
    ConfigOption,
    HomeOption,
    ProfileOption,
    app,
    output_file,
    platform_config,
    serve_app,
    user_errors,
)

DbOption = Annotated[
    str | None,
    typer.Option("--db", help="SQLAlchemy URL of the ratings store (default: <home>/human_eval.db, SQLite)."),
]


def _human_eval(home: Path | None, profile: str | None, config: Path | None, db: str | None):  # type: ignore[no-untyped-def]
    """(HumanEvalConfig, Workspace) for the command's options, as the Dagster assets build them."""
    from evaluation.human_eval.config import HumanEvalConfig

    platform = platform_config(home, profile, config)
    return platform.config_for(HumanEvalConfig, db_url=db or platform.human_eval_url), platform.workspace


@serve_app.command("raters")
def serve_raters(
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1.", min=0, max=65535)] = 7861,
    demo: Annotated[
        bool, typer.Option("--demo", help="First create a demo campaign with synthetic videos.")
    ] = False,
    db: DbOption = None,
    home: HomeOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    fd: Annotated[
        int | None, typer.Option("--fd", hidden=True, help="Serve on this inherited listening socket.", min=0)
    ] = None,
    app_config: Annotated[
        str | None, typer.Option("--app-config", hidden=True, help="RaterAppConfig as JSON (limits).")
    ] = None,
) -> None:
    """Start the rater app (pairwise GSB rating + SFT selection) on 127.0.0.1."""
    import socket

    from evaluation.human_eval.config import RaterAppConfig
    from evaluation.human_eval.demo import seed_demo
    from evaluation.human_eval.store import HumanEvalStoreError, open_store
    from ui.raters import PortUnavailableError, listen_local
    from ui.raters import serve_raters as run_app

    settings, workspace = _human_eval(home, profile, config, db)
    if app_config is not None:
        settings = settings.model_copy(update={"app": RaterAppConfig.model_validate_json(app_config)})
    with user_errors(PortUnavailableError, HumanEvalStoreError):
        # before anything else: a busy port fails fast
        listener = socket.socket(fileno=fd) if fd is not None else listen_local(port)
        open_store(settings)
    if demo:
        accounts = seed_demo(settings, workspace.home / "human_eval_videos")
        for name, password in accounts.passwords.items():
            typer.echo(f"demo account {name}: password {password}")
    typer.echo(f"rater app: http://127.0.0.1:{listener.getsockname()[1]}  (store {settings.db_url})")
    run_app(settings, listener)


@app.command("eval-report")
def eval_report(
    campaign: Annotated[str, typer.Argument(help="Campaign name or id.")],
    db: DbOption = None,
    home: HomeOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON instead of Markdown.")] = False,
    exclude_flagged: Annotated[
        bool, typer.Option("--exclude-flagged", help="Leave out raters who fail gold items.")
    ] = False,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the report to this file.")] = None,
) -> None:
    """Print a campaign's report: Table 3, GSB per dimension, Bradley–Terry, agreement, rater quality."""
    import json

    from evaluation.human_eval.campaign import CampaignError, find_campaign
    from evaluation.human_eval.results import campaign_results
    from orchestration.workspace import atomic_write_text

    if out is not None:
        output_file(out, "--out")
    settings, _ = _human_eval(home, profile, config, db)
    with user_errors(CampaignError):
        campaign_id = find_campaign(settings, campaign)
    results = campaign_results(settings, campaign_id, exclude_flagged=exclude_flagged)
    text = json.dumps(results.to_dict(), indent=2) if json_out else results.to_markdown()
    typer.echo(text)
    if out is not None:
        atomic_write_text(out, text)


@app.command("eval-rater")
def eval_rater(
    name: Annotated[str, typer.Argument(help="Account name.")],
    role: Annotated[str, typer.Option("--role", help="rater or admin.")] = "rater",
    password: Annotated[
        str | None,
        typer.Option("--password", help="The password to sign in with (default: a random one, printed)."),
    ] = None,
    app_url: Annotated[
        str,
        typer.Option("--app-url", help="Where the rater app answers (`videofoundry up` / `serve raters`)."),
    ] = "http://127.0.0.1:7861",
    db: DbOption = None,
    home: HomeOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
) -> None:
    """Create a rater (or admin) account, or give an existing one a new password, and print how to
    sign in: the app's URL, the name and the password (shown once, stored hashed). A new rater gets
    the campaign pairs still short of raters at once."""
    from evaluation.human_eval.accounts import (
        AccountError,
        create_rater,
        new_password,
        rater_exists,
        set_password,
    )
    from evaluation.human_eval.campaign import deal_pending_items

    settings, _ = _human_eval(home, profile, config, db)
    secret = password or new_password()
    with user_errors(AccountError):
        if rater_exists(settings, name):
            identity, action = set_password(settings, name, secret), "has a new password"
        else:
            identity, _ = create_rater(settings, name, role=role, password=secret)
            action = "created"
    queued = deal_pending_items(settings, identity.id)
    typer.echo(f"{identity.role} {identity.name} (id {identity.id}) {action}.")
    typer.echo(f"  sign in at {app_url.rstrip('/')}/login")
    typer.echo(f"  name:     {identity.name}")
    typer.echo(f"  password: {secret}" + ("" if password else "  (shown once; run this again for a new one)"))
    if queued:
        typer.echo(f"  {queued} pair(s) added to the queue")
