"""Scaling laws (the report's §4.4): IsoFLOP power laws N_opt(C), D_opt(C) and the parametric L(N, D).

Runs come from a CSV or the sweep's MLflow experiment (`runs`); `fit_scaling_laws` fits both laws
with bootstrap intervals; `scaling_report` adds the plots, the JSON and the MLflow record.
"""

from evaluation.scaling.fit import Recommendation, ScalingFit, fit_scaling_laws
from evaluation.scaling.isoflop import BudgetMinimum, PowerLaw
from evaluation.scaling.parametric import ParametricLaw, fit_parametric
from evaluation.scaling.report import RunSource, ScalingReport, find_sweep_source, scaling_report
from evaluation.scaling.runs import (
    FAMILIES,
    FINAL_LOSS_METRIC,
    ScalingDataError,
    ScalingRun,
    runs_from_csv,
    runs_from_mlflow,
    sweep_experiment,
    sweep_run_params,
    write_runs_csv,
)

__all__ = [
    "FAMILIES",
    "FINAL_LOSS_METRIC",
    "BudgetMinimum",
    "ParametricLaw",
    "PowerLaw",
    "Recommendation",
    "RunSource",
    "ScalingDataError",
    "ScalingFit",
    "ScalingReport",
    "ScalingRun",
    "find_sweep_source",
    "fit_parametric",
    "fit_scaling_laws",
    "runs_from_csv",
    "runs_from_mlflow",
    "scaling_report",
    "sweep_experiment",
    "sweep_run_params",
    "write_runs_csv",
]
