"""Platform commands: doctor, run, up, demo."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestration.cli_app import (
    MAX_SEED,
    CommandFailure,
    ConfigOption,
    HomeOption,
    LockWaitOption,
    ProfileOption,
    UserError,
    app,
    platform_config,
)


@app.command()
def doctor(
    no_ray: Annotated[bool, typer.Option("--no-ray", help="Skip starting a local Ray.")] = False,
) -> None:
    """Check system tools, Python packages, Ray and GPU; say what is missing and how to fix it."""
    from orchestration.doctor import run_checks

    checks = run_checks(start_ray=not no_ray)
    for check in checks:
        mark = "ok  " if check.ok else ("MISS" if check.required else "warn")
        typer.echo(f"[{mark}] {check.name:<14} {check.detail}")
        if not check.ok and check.fix:
            typer.echo(f"       fix: {check.fix}")
    missing = [c.name for c in checks if c.required and not c.ok]
    if missing:
        raise CommandFailure(f"missing requirements: {', '.join(missing)}")
    typer.echo("all required components present")


@app.command()
def run(
    select: Annotated[
        str | None,
        typer.Option(
            "--select",
            help="Dagster asset selection, e.g. 'key:raw_videos' or 'key:clips+' (default: all assets).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Re-materialize even what Dagster reports as up to date.")
    ] = False,
    home: HomeOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    wait: LockWaitOption = 0.0,
) -> None:
    """Materialize assets in-process through Dagster, skipping what is up to date.

    Runs show up in the Dagster UI (`videofoundry up`).
    """
    from orchestration import runner  # first: it silences Dagster's beta notices before the assets load
    from orchestration.cli_logging import Verbosity, verbosity
    from orchestration.definitions import build_definitions
    from orchestration.workspace_lock import workspace_lock

    platform = platform_config(home, profile, config)
    defs = build_definitions(platform)
    typer.echo(f"Dagster's events (debug included): {runner.dagster_log(platform.workspace)}")

    def report(asset: str, partition: str | None, outcome: str) -> None:
        where = f" [{partition}]" if partition else ""
        shown = {"ok": "materialized", "fresh": "up to date  ", "failed": "FAILED      "}[outcome]
        typer.echo(f"{shown} {asset}{where}", err=outcome == "failed")

    try:
        level = "DEBUG" if verbosity() is Verbosity.VERBOSE else "WARNING"
        with workspace_lock(platform.workspace, "videofoundry run", wait):
            summary = runner.run_lineage(
                defs, platform, select, on_run=report, force=force, console_log_level=level
            )
    except runner.SelectionError as error:
        raise UserError(str(error)) from error
    if not summary.success:
        raise CommandFailure(
            f"a materialization failed; see {runner.dagster_log(platform.workspace)} or the run in the Dagster UI "
            "(videofoundry up)"
        )


@app.command()
def up(
    home: HomeOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    dagster_port: int = typer.Option(3000, help="Dagster webserver port.", min=1, max=65535),
    mlflow_port: int = typer.Option(5000, help="MLflow UI port.", min=1, max=65535),
    demo_port: int = typer.Option(7860, help="Gradio T2V/I2V demo port.", min=1, max=65535),
    raters_port: int = typer.Option(7861, help="Human-eval rater app port.", min=1, max=65535),
    wait: LockWaitOption = 0.0,
) -> None:
    """Start the Dagster UI, the MLflow UI and the Gradio apps on 127.0.0.1; Ctrl-C stops all.

    It holds the workspace lock while it writes the workspace (Dagster's instance file, the MLflow
    schema migrations), not while the UIs serve: a held lock would block
    every `run` for as long as the UIs are open.
    """
    from orchestration.services import platform_services, run_services

    platform = platform_config(home, profile, config)
    workspace = platform.workspace
    services = platform_services(
        workspace,
        dagster_port=dagster_port,
        mlflow_port=mlflow_port,
        demo_port=demo_port,
        raters_port=raters_port,
    )
    typer.echo(f"workspace {workspace.home}; starting:")
    raise typer.Exit(run_services(services, workspace, lock_wait_s=wait))


@app.command()
def demo(
    seed: int = typer.Option(0, help="Seed of the demo corpus.", min=0, max=MAX_SEED),
    home: HomeOption = None,
    profile: ProfileOption = None,
) -> None:
    """Make the demo corpus (once) in raw/demo, then materialize the whole lineage (profile `demo`
    unless --profile says otherwise: the tiny platform with its DiT's SFT stage trained long enough
    to reproduce its SFT clips, and a 4x-space VAE trained 1300 steps)."""
    platform = platform_config(home, profile or "demo", None)
    batch_dir = platform.workspace.raw / "demo"
    if not (batch_dir / "labels.json").exists():
        from curation.democorpus.build import build_demo_corpus

        typer.echo(f"building the demo corpus in {batch_dir}")
        build_demo_corpus(batch_dir, seed=seed)
    run(select=None, force=False, home=platform.home, profile=platform.profile, config=None)
    typer.echo(
        f"\nDone. Start the UIs with:  .venv/bin/videofoundry up --profile {platform.profile}"
        "\n  Dagster (assets, checks, runs)  http://127.0.0.1:3000"
        "\n  MLflow (runs, model registry)   http://127.0.0.1:5000"
        "\n  Gradio demo (T2V / I2V)         http://127.0.0.1:7860"
        "\n  Rater app (GSB pairs, SFT)      http://127.0.0.1:7861  (accounts: videofoundry eval-rater NAME)"
    )
