"""A scaling-law report: read the runs (CSV or MLflow), fit, write JSON + plots, optionally log to MLflow.

The one domain entry used by `videofoundry scaling-fit` and the `scaling_laws` asset.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.scaling.fit import ScalingFit, fit_scaling_laws
from evaluation.scaling.plots import plot_loss_envelope, plot_optimal_allocation
from evaluation.scaling.runs import (
    FIT_ROLE,
    ROLE_TAG,
    ScalingDataError,
    ScalingRun,
    runs_from_csv,
    runs_from_mlflow,
    sweep_experiment,
)


@dataclass(frozen=True)
class RunSource:
    """Where runs came from: a CSV path or an MLflow experiment (at `tracking_uri`)."""

    csv: Path | None = None
    experiment: str | None = None
    tracking_uri: str | None = None

    @classmethod
    def parse(cls, source: str, tracking_uri: str) -> RunSource:
        """A CSV if `source` ends in .csv or names an existing file, else an MLflow experiment name."""
        path = Path(source)
        if source.lower().endswith(".csv") or path.is_file():
            return cls(csv=path)
        return cls(experiment=source, tracking_uri=tracking_uri)

    def describe(self) -> str:
        return str(self.csv) if self.csv is not None else f"MLflow experiment {self.experiment!r}"

    def read(self) -> tuple[list[ScalingRun], list[str]]:
        """(runs, skipped-run notes)."""
        if self.csv is not None:
            return runs_from_csv(self.csv), []
        assert self.experiment is not None and self.tracking_uri is not None
        return runs_from_mlflow(self.tracking_uri, self.experiment)

    def fingerprint(self) -> str:
        """A hash of the runs this source holds now: it changes when a run is added or finishes."""
        runs, skipped = self.read()
        text = json.dumps([[dataclasses.astuple(r) for r in runs], skipped], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def find_sweep_source(
    csv_dir: Path, tracking_uri: str, base_experiment: str, family: str
) -> RunSource | None:
    """Where a workspace keeps the runs of `family`: `<csv_dir>/<family>_runs.csv` if that file
    exists, else the MLflow experiment `sweep_experiment(base_experiment, family)` if it exists, else None."""
    from mlflow.tracking import MlflowClient

    csv = csv_dir / f"{family}_runs.csv"
    if csv.is_file():
        return RunSource(csv=csv)
    experiment = sweep_experiment(base_experiment, family)
    if MlflowClient(tracking_uri=tracking_uri).get_experiment_by_name(experiment) is None:
        return None
    return RunSource(experiment=experiment, tracking_uri=tracking_uri)


@dataclass(frozen=True)
class ScalingReport:
    """A finished fit and the files written for it."""

    runs: list[ScalingRun]
    skipped: list[str]
    fit: ScalingFit
    budget: float | None
    json_path: Path
    envelope_png: Path
    allocation_png: Path
    mlflow_run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The fit's JSON plus the plot paths, skipped runs and the MLflow run of the report."""
        return {
            **self.fit.to_dict(self.budget),
            "skipped_runs": list(self.skipped),
            "plots": {"envelope": str(self.envelope_png), "allocation": str(self.allocation_png)},
            "mlflow_run_id": self.mlflow_run_id,
        }

    def to_markdown(self) -> str:
        """The laws, their intervals and the recommendation as a Markdown table."""
        data = self.fit.to_dict(self.budget)

        def interval(pair: list[float]) -> str:
            return f"{pair[0]:.4g} … {pair[1]:.4g}"

        rows = [
            ("N_opt exponent b1", data["n_opt"]["exponent"], interval(data["n_opt"]["ci"]["exponent"])),
            (
                "N_opt coefficient a1",
                data["n_opt"]["coefficient"],
                interval(data["n_opt"]["ci"]["coefficient"]),
            ),
            ("D_opt exponent b2", data["d_opt"]["exponent"], interval(data["d_opt"]["ci"]["exponent"])),
            (
                "D_opt coefficient a2",
                data["d_opt"]["coefficient"],
                interval(data["d_opt"]["ci"]["coefficient"]),
            ),
            *[
                (name, data["parametric"][name], interval(data["parametric"]["ci"][name]))
                for name in ("E", "A", "B", "alpha", "beta")
            ],
        ]
        target = data["recommendation"]
        rows += [
            (f"N at C = {target['budget']:.3g}", target["params"], interval(target["params_ci"])),
            (f"D at C = {target['budget']:.3g}", target["tokens"], interval(target["tokens_ci"])),
            (
                f"loss at C = {target['budget']:.3g}",
                target["predicted_loss"],
                interval(target["predicted_loss_ci"]),
            ),
        ]
        confidence = f"{100 * self.fit.confidence:.0f}%"
        lines = [f"| quantity | fit | {confidence} interval |", "|---|---|---|"]
        lines += [f"| {name} | {value:.4g} | {ci} |" for name, value, ci in rows]
        return "\n".join(lines)


def _write_json(data: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    with os.fdopen(handle, "w") as stream:
        json.dump(data, stream, indent=2)
    os.replace(tmp, path)


def scaling_report(
    source: RunSource,
    out_dir: Path,
    budget: float | None = None,
    n_bootstrap: int = 200,
    seed: int = 0,
    log_to_mlflow: bool = True,
) -> ScalingReport:
    """Fit the runs of `source`; write scaling_fit.json, envelope.png, allocation.png into `out_dir`.

    When the runs come from MLflow and `log_to_mlflow`, the fit is also logged there as a run
    tagged `ROLE_TAG=FIT_ROLE` (the plots and JSON as artifacts, the exponents as metrics).
    Raises `ScalingDataError` when the runs cannot be read or do not support a fit.
    """
    runs, skipped = source.read()
    if not runs:
        raise ScalingDataError(
            f"{source.describe()} holds no usable run" + (f" ({'; '.join(skipped)})" if skipped else "")
        )
    fit = fit_scaling_laws(runs, n_bootstrap=n_bootstrap, seed=seed)
    fit.recommend(budget)  # rejects a bad budget before any file is written
    envelope = plot_loss_envelope(runs, fit, out_dir / "envelope.png", budget)
    allocation = plot_optimal_allocation(fit, out_dir / "allocation.png", budget)
    report = ScalingReport(runs, skipped, fit, budget, out_dir / "scaling_fit.json", envelope, allocation)
    run_id = None
    if source.experiment is not None and log_to_mlflow:
        run_id = _log_fit(report, source)
        report = dataclasses.replace(report, mlflow_run_id=run_id)
    _write_json(report.to_dict(), report.json_path)
    return report


def _log_fit(report: ScalingReport, source: RunSource) -> str:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=source.tracking_uri)
    experiment = client.get_experiment_by_name(source.experiment or "")
    assert experiment is not None, "the runs were just read from this experiment"
    fit = report.fit
    run_id = client.create_run(
        experiment.experiment_id, run_name="scaling-fit", tags={ROLE_TAG: FIT_ROLE}
    ).info.run_id
    recommendation = fit.recommend(report.budget)
    for key, value in {
        "n_opt_coefficient": fit.n_opt.coefficient,
        "n_opt_exponent": fit.n_opt.exponent,
        "d_opt_coefficient": fit.d_opt.coefficient,
        "d_opt_exponent": fit.d_opt.exponent,
        **{f"parametric_{k}": getattr(fit.parametric, k) for k in ("E", "A", "B", "alpha", "beta")},
        "recommended_params": recommendation.params,
        "recommended_tokens": recommendation.tokens,
        "predicted_loss": recommendation.predicted_loss,
    }.items():
        client.log_metric(run_id, key, float(value))
    client.log_param(run_id, "runs", str(fit.runs))
    client.log_param(run_id, "budget", repr(recommendation.budget))
    for png in (report.envelope_png, report.allocation_png):
        client.log_artifact(run_id, str(png), artifact_path="plots")
    client.log_dict(run_id, fit.to_dict(report.budget), "scaling_fit.json")
    client.set_terminated(run_id)
    return run_id
