"""`videofoundry scaling-sweep` (train a DiT size ladder at IsoFLOP budgets) and `videofoundry scaling-fit
RUNS.csv|MLFLOW_EXPERIMENT` (scaling laws and a compute-optimal recommendation)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchestration.cli_app import (
    MAX_SEED,
    ConfigOption,
    DataVersionOption,
    HomeOption,
    ProfileOption,
    UserError,
    app,
    platform_config,
)

if TYPE_CHECKING:
    from training.scaling.run import SweepOutcome


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


def _numbers(text: str, option: str) -> list[float]:
    try:
        values = [float(item) for item in text.split(",") if item.strip()]
    except ValueError as error:
        raise UserError(f"{option} {text!r} must be comma-separated numbers, e.g. 1e11,3e11,1e12") from error
    if not values or any(not (math.isfinite(v) and v > 0) for v in values):
        raise UserError(f"{option} {text!r} must be one or more positive FLOP counts, e.g. 1e11,3e11,1e12")
    return values


@app.command("scaling-sweep")
def scaling_sweep(
    family: Annotated[
        str, typer.Option("--family", help="image | video (video starts from the image runs).")
    ],
    budgets: Annotated[
        str,
        typer.Option("--budgets", help="IsoFLOP budgets in training FLOPs, comma-separated: 1e11,3e11,1e12."),
    ],
    sizes: Annotated[
        str | None,
        typer.Option("--sizes", help="Comma-separated ladder sizes (e.g. w64-1x1,w96-1x2); default: all."),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset", help="Sweep preset: tiny (CPU), gpu (one GPU), paper (default: the profile's)."
        ),
    ] = None,
    device: Annotated[str, typer.Option("--device", help="auto (CUDA when present) | cpu | cuda.")] = "auto",
    launcher: Annotated[
        str,
        typer.Option(
            "--launcher", help="auto | local | ray (auto: Ray Train when the preset needs workers)."
        ),
    ] = "auto",
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads", help="torch CPU threads while training (1 is fastest for tiny models).", min=1
        ),
    ] = None,
    bracket: Annotated[
        int,
        typer.Option(
            "--bracket",
            help="Up to N more rounds, each adding the neighbouring ladder size at every budget whose "
            "lowest loss is still at an end of its sizes (extrapolated minima).",
            min=0,
        ),
    ] = 0,
    fit: Annotated[bool, typer.Option("--fit/--no-fit", help="Fit the laws after the sweep.")] = True,
    bootstrap: Annotated[int, typer.Option("--bootstrap", help="Bootstrap draws of the fit.", min=0)] = 200,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary (and fit) as JSON.")] = False,
    home: HomeOption = None,
    profile: ProfileOption = None,
    config: ConfigOption = None,
    data_version: DataVersionOption = None,
) -> None:
    """Plan and train DiT sizes at IsoFLOP budgets (MLflow experiment <experiment>-scaling-<family>);
    runs already finished there are skipped. Prints one line per run, then the fit when it can be made."""
    from evaluation.scaling import RunSource, ScalingDataError, scaling_report
    from orchestration.resources import tracking_resource
    from orchestration.scaling_sweep import scaling_sweep_in_workspace
    from orchestration.workspace import Workspace

    if device not in ("auto", "cpu", "cuda"):
        raise UserError(f"--device must be auto, cpu or cuda, got {device!r}")
    if launcher not in ("auto", "local", "ray"):
        raise UserError(f"--launcher must be auto, local or ray, got {launcher!r}")
    budget_values = _numbers(budgets, "--budgets")
    size_names = [s.strip() for s in sizes.split(",") if s.strip()] if sizes else None
    platform = platform_config(home, profile, config)
    workspace = Workspace.at(platform.home)
    tracking = tracking_resource(platform).settings()

    def line(outcome: SweepOutcome) -> None:
        if not json_out:
            typer.echo(_outcome_line(outcome))

    try:
        result = scaling_sweep_in_workspace(
            workspace, family, budget_values, tracking, preset=preset or platform.profile, sizes=size_names,
            device=device, launcher=launcher, ray_address=platform.compute.ray_address,  # type: ignore[arg-type]
            data_version=data_version, threads=threads, on_run=line, bracket=bracket,
        )  # fmt: skip
    except ValueError as error:  # plan, preset, data and device errors
        raise UserError(str(error)) from error
    summary: dict = {
        "family": family,
        "experiment": result.experiment,
        "data": result.data_source,
        "trained": sum(o.status == "trained" for o in result.outcomes),
        "already_finished": sum(o.status == "finished" for o in result.outcomes),
        "plan_skipped": result.plan.skipped,
        "runs": [_outcome_dict(o) for o in result.outcomes],
        "fit": None,
        "fit_note": "--no-fit",
    }
    if fit:
        source = RunSource(experiment=result.experiment, tracking_uri=tracking.uri)
        try:
            report = scaling_report(
                source, workspace.reports / "scaling" / result.experiment, n_bootstrap=bootstrap
            )
            summary["fit"], summary["fit_note"] = report.to_dict(), f"fit: {report.json_path}"
        except ScalingDataError as error:
            summary["fit_note"] = f"no fit yet: {error}"
    if json_out:
        typer.echo(json.dumps(summary, indent=2))
        return
    lines = [f"data: {result.data_source}; runs in MLflow experiment {result.experiment!r}"]
    lines += [f"not planned: {note}" for note in result.plan.skipped]
    lines.append(f"{summary['trained']} trained, {summary['already_finished']} already finished")
    if summary["fit"] is not None:
        n_opt, d_opt = summary["fit"]["n_opt"], summary["fit"]["d_opt"]
        lines.append(f"N_opt = {n_opt['coefficient']:.4g} · C^{n_opt['exponent']:.4f}")
        lines.append(f"D_opt = {d_opt['coefficient']:.4g} · C^{d_opt['exponent']:.4f}")
    lines.append(summary["fit_note"])
    typer.echo("\n".join(lines))


def _outcome_dict(outcome: SweepOutcome) -> dict:
    run = outcome.run
    return {
        "size": run.size,
        "params": run.params,
        "budget": run.budget,
        "steps": run.steps,
        "batch_size": run.batch_size,
        "tokens": run.tokens,
        "flops": run.flops,
        "loss": outcome.finished.loss,
        "status": outcome.status,
        "seconds": round(outcome.seconds, 2),
        "run_id": outcome.finished.run_id,
        "checkpoint": str(outcome.finished.checkpoint) if outcome.finished.checkpoint else None,
    }


def _outcome_line(outcome: SweepOutcome) -> str:
    run = outcome.run
    how = f"trained in {outcome.seconds:.1f} s" if outcome.status == "trained" else "already finished"
    return (
        f"C = {run.budget:.3g}  {run.size:<12} N = {run.params:>11,}  {run.steps:>6} steps  "
        f"D = {run.tokens:.3g}  loss {outcome.finished.loss:.4f}  ({how})"
    )
