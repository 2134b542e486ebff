"""`videofoundry scaling-fit RUNS.csv|MLFLOW_EXPERIMENT`: scaling laws and a compute-optimal recommendation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from orchestration.cli_app import (
    MAX_SEED,
    ConfigOption,
    HomeOption,
    ProfileOption,
    UserError,
    app,
    platform_config,
)


@app.command("scaling-fit")
def scaling_fit(
    source: Annotated[
        str,
        typer.Argument(
            help="A CSV (columns params,tokens,flops,loss; flops optional = 6·N·D) or the name of the "
            "MLflow experiment of a sweep (e.g. videofoundry-scaling-image)."
        ),
    ],
    json_out: Annotated[bool, typer.Option("--json", help="Print the fit as JSON.")] = False,
    budget: Annotated[
        float | None,
        typer.Option(
            "--budget", help="Compute budget C in FLOPs to recommend for (default: 10 × the largest run)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            help="Folder for scaling_fit.json and the plots (default: <home>/reports/scaling/<source>).",
        ),
    ] = None,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", help="Bootstrap draws for the intervals.", min=0)
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the bootstrap.", min=0, max=MAX_SEED)] = 0,
    home: HomeOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
) -> None:
    """Fit N_opt = a1·C^b1, D_opt = a2·C^b2 (IsoFLOP minima) and L = E + A/N^α + B/D^β (Huber), with
    bootstrap intervals; plot them; recommend (N, D) and predict the loss for a budget."""
    from evaluation.scaling import RunSource, ScalingDataError, scaling_report
    from orchestration.workspace import Workspace

    platform = platform_config(home, profile, config)
    workspace = Workspace.at(platform.home)
    run_source = RunSource.parse(source, platform.tracking.mlflow_uri or workspace.mlflow_uri)
    name = run_source.csv.stem if run_source.csv is not None else source
    try:
        report = scaling_report(
            run_source, out or workspace.reports / "scaling" / name, budget, n_bootstrap=bootstrap, seed=seed
        )
    except ScalingDataError as error:
        raise UserError(str(error)) from error
    data = report.to_dict()
    if json_out:
        typer.echo(json.dumps(data, indent=2))
        return
    law, target = data["parametric"], data["recommendation"]

    def power_law(name: str) -> str:
        low, high = data[name]["ci"]["exponent"]
        return f"{data[name]['coefficient']:.4g} · C^{data[name]['exponent']:.4f}  (exponent CI {low:.4f} … {high:.4f})"

    lines = [
        f"{data['runs']} runs from {run_source.describe()} ({len(data['budgets'])} budgets with a minimum)",
        f"N_opt = {power_law('n_opt')}",
        f"D_opt = {power_law('d_opt')}",
        f"L(N, D) = {law['E']:.4g} + {law['A']:.4g}/N^{law['alpha']:.4f} + {law['B']:.4g}/D^{law['beta']:.4f}",
        f"at C = {target['budget']:.4g} FLOPs: N = {target['params']:.4g}, D = {target['tokens']:.4g} tokens, "
        f"predicted loss {target['predicted_loss']:.4f} "
        f"({target['predicted_loss_ci'][0]:.4f} … {target['predicted_loss_ci'][1]:.4f})",
        *[f"note: {note}" for note in data["notes"]],
        *[f"skipped: {note}" for note in data["skipped_runs"]],
        f"plots: {report.envelope_png}, {report.allocation_png}",
        f"fit: {report.json_path}",
    ]
    if report.mlflow_run_id:
        lines.append(f"logged to MLflow run {report.mlflow_run_id}")
    typer.echo("\n".join(lines))
