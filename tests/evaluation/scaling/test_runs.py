"""Reading sweep runs: the CSV layout (flops optional = 6·N·D) and a real MLflow experiment."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from evaluation.scaling import (
    FINAL_LOSS_METRIC,
    ScalingDataError,
    runs_from_csv,
    runs_from_mlflow,
    sweep_experiment,
    sweep_run_params,
    write_runs_csv,
)
from evaluation.scaling.runs import FIT_ROLE, ROLE_TAG
from tests.evaluation.scaling.builders import CHINCHILLA, isoflop_runs


def test_csv_without_flops_uses_6_n_d(tmp_path: Path):
    path = tmp_path / "runs.csv"
    path.write_text("params,tokens,loss\n1e6,2e7,3.5\n2000000, 1e7 ,3.25\n")
    runs = runs_from_csv(path)
    assert [r.flops for r in runs] == [6 * 1e6 * 2e7, 6 * 2e6 * 1e7]
    assert [r.loss for r in runs] == [3.5, 3.25]
    assert runs[0].budget is None and runs[0].name == "line 2"


def test_csv_round_trip_keeps_flops_and_budget(tmp_path: Path):
    runs = isoflop_runs(CHINCHILLA, budgets=(1e19, 1e20), sizes=3)
    runs[0] = type(runs[0])(**{**runs[0].__dict__, "budget": 1e19})
    back = runs_from_csv(write_runs_csv(runs, tmp_path / "sweep" / "runs.csv"))
    assert back == runs


def test_csv_with_an_empty_flops_cell_uses_6_n_d(tmp_path: Path):
    path = tmp_path / "runs.csv"
    path.write_text("params,tokens,flops,loss\n1e6,2e7,,3.5\n1e6,2e7,5e14,3.4\n")
    assert [r.flops for r in runs_from_csv(path)] == [1.2e14, 5e14]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("params,tokens,flops\n1,2,3\n", "lacks the column"),
        ("params,tokens,loss\n1e6,many,3.0\n", "runs.csv:2: tokens 'many' is not a number"),
        ("params,tokens,loss\n1e6,1e7,-3.0\n", "loss must be finite and > 0"),
        ("params,tokens,loss\n1e6,1e7,nan\n", "loss must be finite and > 0"),
    ],
)
def test_bad_csv_is_a_data_error(tmp_path: Path, text: str, message: str):
    path = tmp_path / "runs.csv"
    path.write_text(text)
    with pytest.raises(ScalingDataError, match=message):
        runs_from_csv(path)
    with pytest.raises(ScalingDataError, match="does not exist"):
        runs_from_csv(tmp_path / "absent.csv")


def log_sweep(
    tracking_uri: str, artifacts: Path, experiment: str, runs, budget_known: bool = True
) -> MlflowClient:
    """Log `runs` as a sweep would (artifacts under `artifacts`): the sweep's params, then the final loss."""
    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.create_experiment(experiment, artifact_location=artifacts.as_uri())
    for run in runs:
        run_id = client.create_run(experiment_id, run_name=run.name).info.run_id
        params = sweep_run_params(
            "image", run.name, int(run.params), int(run.tokens), run.flops, run.flops, "dvc:tiers@abc"
        )
        if not budget_known:
            del params["scaling.budget"]
        for key, value in params.items():
            client.log_param(run_id, key, value)
        client.log_metric(run_id, FINAL_LOSS_METRIC, run.loss)
        client.set_terminated(run_id)
    return client


def test_mlflow_experiment_round_trip(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment = sweep_experiment("videofoundry", "image")
    assert experiment == "videofoundry-scaling-image"
    runs = isoflop_runs(CHINCHILLA, budgets=(1e19, 1e20), sizes=3)
    client = log_sweep(uri, tmp_path / "mlartifacts", experiment, runs)
    experiment_id = client.get_experiment_by_name(experiment).experiment_id
    running = client.create_run(experiment_id, run_name="still-training").info.run_id
    client.log_param(running, "scaling.params", "1000")
    unlabelled = client.create_run(experiment_id, run_name="no-loss").info.run_id
    client.set_terminated(unlabelled)
    client.set_terminated(client.create_run(experiment_id, tags={ROLE_TAG: FIT_ROLE}).info.run_id)

    read, skipped = runs_from_mlflow(uri, experiment)

    by_name = {r.name: r for r in read}
    assert sorted(by_name) == sorted(r.name for r in runs)
    for run in runs:
        got = by_name[run.name]
        assert (got.params, got.tokens) == (int(run.params), int(run.tokens))
        assert (got.flops, got.loss, got.budget) == (run.flops, run.loss, run.flops)
    assert sorted(skipped) == [
        "no-loss: no scaling.params, scaling.tokens, scaling.flops, scaling.final_loss",
        "still-training: status RUNNING",
    ]


def test_missing_experiment_and_family_are_data_errors(tmp_path: Path):
    with pytest.raises(ScalingDataError, match="no MLflow experiment 'absent'"):
        runs_from_mlflow(f"sqlite:///{tmp_path / 'mlflow.db'}", "absent")
    with pytest.raises(ScalingDataError, match="unknown sweep family 'audio'"):
        sweep_experiment("videofoundry", "audio")
