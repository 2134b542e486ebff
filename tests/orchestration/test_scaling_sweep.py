"""A tiny scaling sweep through the real DiT trainer: MLflow rows in the fit's shape, resume, video starts."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from typer.testing import CliRunner

from evaluation.scaling import runs_from_mlflow
from orchestration.cli import app
from orchestration.scaling_sweep import CHECKPOINT_TAG, INIT_FROM_PARAM, scaling_sweep_in_workspace
from orchestration.workspace import Workspace
from training.tracking import TrackingSettings, default_tracking_uri

MAIN = [sys.executable, "-c", "from orchestration.cli import main; main()"]

# Few steps per run: min_steps 3 lets w64-1x1 in with 3 steps at 4e8 FLOPs, w64-1x2 (2 steps) not.
TINY = {"min_steps": 3}
SIZES = ["w32-1x1", "w64-1x1", "w64-1x2"]


def _tracking(home: Path) -> TrackingSettings:
    uri, artifacts = default_tracking_uri(home)
    return TrackingSettings(uri=uri, artifact_location=artifacts, experiment="videofoundry")


@pytest.mark.slow
def test_tiny_sweep_logs_fit_ready_rows_resumes_and_starts_video_from_image(tmp_path: Path):
    ws = Workspace.at(tmp_path / "home").ensure()
    tracking = _tracking(ws.home)
    common = {"preset_overrides": TINY, "threads": 1}
    image = scaling_sweep_in_workspace(ws, "image", [4e8], tracking, sizes=SIZES, **common)

    # 4e8 buys w64-1x2 only 2 steps (< 3): planned out. The other two trained through the trainer.
    assert [(o.run.size, o.run.steps, o.status) for o in image.outcomes] == [
        ("w32-1x1", 10, "trained"), ("w64-1x1", 3, "trained"),
    ]  # fmt: skip
    assert image.plan.skipped and "w64-1x2 at C = 4e+08" in image.plan.skipped[0]
    assert image.data_source.startswith("stand-in corpus")

    # What scaling-fit reads: every run with its planned N, D, C, budget and the trainer's final loss.
    runs, skipped = runs_from_mlflow(tracking.uri or "", image.experiment)
    assert skipped == []
    planned = {
        (o.run.params, o.run.tokens, o.run.flops, o.run.budget): o.finished.loss for o in image.outcomes
    }
    assert {(r.params, r.tokens, r.flops, r.budget): r.loss for r in runs} == planned
    assert all(math.isfinite(loss) for loss in planned.values())
    client = MlflowClient(tracking_uri=tracking.uri)
    mlflow_run = client.get_run(image.outcomes[0].finished.run_id)
    assert mlflow_run.data.params["scaling.data_version"].startswith("records:")
    assert mlflow_run.data.params["scaling.steps"] == "10"
    assert Path(mlflow_run.data.tags[CHECKPOINT_TAG]).is_dir()
    assert mlflow_run.data.metrics["loss"] > 0  # the trainer's own curve is in the same run

    # A rerun trains nothing and adds no MLflow run.
    experiment = client.get_experiment_by_name(image.experiment)
    assert experiment is not None
    before = len(client.search_runs([experiment.experiment_id]))
    again = scaling_sweep_in_workspace(ws, "image", [4e8], tracking, sizes=SIZES, **common)
    assert {o.status for o in again.outcomes} == {"finished"}
    assert [o.finished.run_id for o in again.outcomes] == [o.finished.run_id for o in image.outcomes]
    assert len(client.search_runs([experiment.experiment_id])) == before

    # The video sweep starts w32-1x1 from the image run's checkpoint (its only, so its best).
    video = scaling_sweep_in_workspace(ws, "video", [2e8], tracking, sizes=["w32-1x1"], **common)
    start = image.outcomes[0].finished.checkpoint
    assert video.starts == {"w32-1x1": start}
    (trained,) = video.outcomes
    video_run = client.get_run(trained.finished.run_id)
    assert video_run.data.params[INIT_FROM_PARAM] == str(start)
    assert video_run.data.params["scaling.family"] == "video"
    assert video_run.data.params["init_from"] == str(start)  # what the trainer loaded


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--family", "image", "--budgets", "1e9,lots"], "comma-separated numbers"),
        (["--family", "image", "--budgets", "1e9,-3"], "positive FLOP counts"),
        (["--family", "image", "--budgets", "1e9", "--sizes", "w999-9x9"], "unknown sweep size 'w999-9x9'"),
        (["--family", "audio", "--budgets", "1e9"], "unknown sweep family 'audio'"),
        (["--family", "image", "--budgets", "1e3"], "raise the budgets"),
        (["--family", "image", "--budgets", "1e9", "--preset", "huge"], "unknown SweepConfig preset 'huge'"),
        (["--family", "image", "--budgets", "1e9", "--device", "tpu"], "--device must be auto, cpu or cuda"),
        (["--family", "video", "--budgets", "1e11"], "no finished image run"),
    ],
)
def test_bad_sweep_requests_are_user_errors_with_the_reason(tmp_path: Path, args: list[str], message: str):
    result = CliRunner().invoke(app, ["scaling-sweep", *args, "--home", str(tmp_path / "home")])
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_a_bad_budget_exits_2_with_one_error_line(tmp_path: Path):
    result = subprocess.run(
        [*MAIN, "scaling-sweep", "--family", "image", "--budgets", "0", "--home", str(tmp_path / "home")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "error: --budgets '0' must be one or more positive FLOP counts, e.g. 1e11,3e11,1e12"
    )


@pytest.mark.slow
def test_bracketing_trains_the_neighbouring_sizes_of_an_unbracketed_budget(tmp_path: Path):
    ws = Workspace.at(tmp_path / "home").ensure()
    tracking = _tracking(ws.home)
    # One size at 1e9: its minimum is unbracketed on both sides, so round 1 adds both neighbours.
    result = scaling_sweep_in_workspace(
        ws, "image", [1e9], tracking, sizes=["w64-1x1"], preset_overrides=TINY, threads=1, bracket=1
    )
    assert [(o.run.size, o.status) for o in result.outcomes] == [
        ("w64-1x1", "trained"), ("w32-1x1", "trained"), ("w64-1x2", "trained"),
    ]  # fmt: skip
    assert [r.size for r in result.plan.runs] == ["w64-1x1", "w32-1x1", "w64-1x2"]
    runs, _ = runs_from_mlflow(tracking.uri or "", result.experiment)
    assert sorted(r.params for r in runs) == sorted(o.run.params for o in result.outcomes)
