"""The runs a scaling-law fit reads: one record per trained model, from a CSV or an MLflow experiment.

A run is (N, D, C, L): N parameters (`model.flops.dit_param_count`: total, embeddings included),
D training tokens (video latent patch tokens seen, text tokens not counted), C training FLOPs
(`model.flops.dit_flops(...).training` per step × steps; 6·N·D when a CSV leaves it out) and L the
final training loss. `budget` is the IsoFLOP budget the run was planned for (runs of one budget
share it); when absent, runs are grouped by their FLOPs (`assign_budgets`).

The sweep logs every run under the names below, in one MLflow experiment per family
(`sweep_experiment`): `sweep_run_params(...)` as the run's params, and the final loss as the metric
`FINAL_LOSS_METRIC`. `runs_from_mlflow` reads them back (and passes over the fits logged there).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PARAMS_PARAM = "scaling.params"
TOKENS_PARAM = "scaling.tokens"
FLOPS_PARAM = "scaling.flops"
BUDGET_PARAM = "scaling.budget"
FAMILY_PARAM = "scaling.family"
SIZE_PARAM = "scaling.size"
DATA_VERSION_PARAM = "scaling.data_version"
FINAL_LOSS_METRIC = "scaling.final_loss"
# A fit logged into the sweep's experiment carries ROLE_TAG = FIT_ROLE and is not read as a run.
ROLE_TAG = "scaling.role"
FIT_ROLE = "fit"
FAMILIES = ("image", "video")
# Runs whose FLOPs lie within this factor of a group's smallest share one IsoFLOP budget.
BUDGET_GROUPING_FACTOR = 1.25


class ScalingDataError(ValueError):
    """The runs cannot be read or are not enough for a fit; the message says what to supply."""


@dataclass(frozen=True)
class ScalingRun:
    """One trained model: N parameters, D tokens, C FLOPs, final loss L, planned budget (or None)."""

    params: float
    tokens: float
    flops: float
    loss: float
    budget: float | None = None
    name: str = ""

    def __post_init__(self) -> None:
        values = {"params": self.params, "tokens": self.tokens, "flops": self.flops, "loss": self.loss}
        bad = [k for k, v in values.items() if not (math.isfinite(v) and v > 0)]
        if self.budget is not None and not (math.isfinite(self.budget) and self.budget > 0):
            bad.append("budget")
        if bad:
            raise ScalingDataError(f"run {self.name or values}: {', '.join(bad)} must be finite and > 0")


def sweep_experiment(base_experiment: str, family: str) -> str:
    """The MLflow experiment holding the sweep of `family` (image|video) for a platform experiment."""
    if family not in FAMILIES:
        raise ScalingDataError(f"unknown sweep family {family!r}; choose one of {', '.join(FAMILIES)}")
    return f"{base_experiment}-scaling-{family}"


def sweep_run_params(
    family: str, size: str, params: int, tokens: int, flops: float, budget: float, data_version: str
) -> dict[str, str]:
    """The MLflow params a sweep run logs (the tokens and FLOPs it actually trained with)."""
    return {
        FAMILY_PARAM: family,
        SIZE_PARAM: size,
        PARAMS_PARAM: str(int(params)),
        TOKENS_PARAM: str(int(tokens)),
        FLOPS_PARAM: repr(float(flops)),
        BUDGET_PARAM: repr(float(budget)),
        DATA_VERSION_PARAM: data_version,
    }


def _number(text: str, column: str, where: str) -> float:
    try:
        return float(text)
    except ValueError as error:
        raise ScalingDataError(f"{where}: {column} {text!r} is not a number") from error


def runs_from_csv(path: Path) -> list[ScalingRun]:
    """Runs from a CSV with columns params,tokens,loss and optionally flops, budget, name.

    A missing (or empty) flops value is 6·params·tokens.
    """
    if not path.is_file():
        raise ScalingDataError(f"{path} does not exist; pass a CSV with columns params,tokens,flops,loss")
    with path.open(newline="") as stream:
        reader = csv.DictReader(stream)
        columns = {c.strip() for c in reader.fieldnames or []}
        missing = {"params", "tokens", "loss"} - columns
        if missing:
            raise ScalingDataError(
                f"{path} lacks the column(s) {', '.join(sorted(missing))}; "
                "expected params,tokens,flops,loss (flops optional)"
            )
        runs = []
        for line, raw in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in raw.items() if k is not None}
            where = f"{path}:{line}"
            params = _number(row["params"], "params", where)
            tokens = _number(row["tokens"], "tokens", where)
            flops = _number(row["flops"], "flops", where) if row.get("flops") else 6.0 * params * tokens
            budget = _number(row["budget"], "budget", where) if row.get("budget") else None
            runs.append(
                ScalingRun(
                    params=params,
                    tokens=tokens,
                    flops=flops,
                    loss=_number(row["loss"], "loss", where),
                    budget=budget,
                    name=row.get("name") or f"line {line}",
                )
            )
    return runs


def write_runs_csv(runs: Sequence[ScalingRun], path: Path) -> Path:
    """Write runs in the CSV layout `runs_from_csv` reads (name,params,tokens,flops,loss,budget)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["name", "params", "tokens", "flops", "loss", "budget"])
        for run in runs:
            numbers = [repr(float(v)) for v in (run.params, run.tokens, run.flops, run.loss)]
            writer.writerow([run.name, *numbers, "" if run.budget is None else repr(float(run.budget))])
    return path


def runs_from_mlflow(tracking_uri: str, experiment: str) -> tuple[list[ScalingRun], list[str]]:
    """The finished runs of an MLflow experiment that carry the sweep's params and final loss.

    Returns (runs, skipped) where `skipped` names each run left out and why (unfinished, or a
    field missing). Raises `ScalingDataError` when the experiment does not exist.
    """
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise ScalingDataError(
            f"no MLflow experiment {experiment!r} at {tracking_uri}; run a scaling sweep first or pass a CSV"
        )
    runs: list[ScalingRun] = []
    skipped: list[str] = []
    page_token = None
    while True:
        page = client.search_runs([found.experiment_id], max_results=1000, page_token=page_token)
        for run in page:
            label = run.info.run_name or run.info.run_id
            if run.data.tags.get(ROLE_TAG) == FIT_ROLE:
                continue
            params, metrics = run.data.params, run.data.metrics
            if run.info.status != "FINISHED":
                skipped.append(f"{label}: status {run.info.status}")
                continue
            absent = [k for k in (PARAMS_PARAM, TOKENS_PARAM, FLOPS_PARAM) if k not in params]
            absent += [FINAL_LOSS_METRIC] if FINAL_LOSS_METRIC not in metrics else []
            if absent:
                skipped.append(f"{label}: no {', '.join(absent)}")
                continue
            runs.append(
                ScalingRun(
                    params=float(params[PARAMS_PARAM]),
                    tokens=float(params[TOKENS_PARAM]),
                    flops=float(params[FLOPS_PARAM]),
                    loss=float(metrics[FINAL_LOSS_METRIC]),
                    budget=float(params[BUDGET_PARAM]) if BUDGET_PARAM in params else None,
                    name=label,
                )
            )
        page_token = page.token
        if not page_token:
            return runs, skipped


def assign_budgets(runs: Sequence[ScalingRun]) -> list[float]:
    """The IsoFLOP budget of each run (same order): its planned `budget`, or else a group's FLOPs.

    Runs without a budget are sorted by FLOPs and grouped while they stay within
    `BUDGET_GROUPING_FACTOR` of the group's smallest; the group's budget is the geometric mean of
    its members' FLOPs.
    """
    budgets: list[float | None] = [r.budget for r in runs]
    loose = sorted((i for i, r in enumerate(runs) if r.budget is None), key=lambda i: runs[i].flops)
    group: list[int] = []
    for index in [*loose, None]:
        if index is not None and (
            not group or runs[index].flops <= BUDGET_GROUPING_FACTOR * runs[group[0]].flops
        ):
            group.append(index)
            continue
        if group:
            members = [runs[i].flops for i in group]
            centre = (
                members[0] if len(set(members)) == 1 else math.exp(sum(map(math.log, members)) / len(members))
            )
            for i in group:
                budgets[i] = centre
        group = [index] if index is not None else []
    assigned = [b for b in budgets if b is not None]
    assert len(assigned) == len(runs), "every run belongs to a budget group"
    return assigned
