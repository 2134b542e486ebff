"""`scaling_report`: the fit of an MLflow sweep written as JSON + two PNGs and logged back to MLflow."""

from __future__ import annotations

import json
from pathlib import Path

from mlflow.tracking import MlflowClient
from PIL import Image

from evaluation.scaling import RunSource, runs_from_mlflow, scaling_report, sweep_experiment
from evaluation.scaling.runs import FIT_ROLE, ROLE_TAG
from tests.evaluation.scaling.builders import PAPER_IMAGE_LIKE, isoflop_runs
from tests.evaluation.scaling.test_runs import log_sweep


def test_report_from_mlflow_writes_plots_and_logs_the_fit(tmp_path: Path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    experiment = sweep_experiment("videofoundry", "image")
    runs = isoflop_runs(PAPER_IMAGE_LIKE, budgets=(1e18, 1e19, 1e20), sizes=7)
    log_sweep(uri, tmp_path / "mlartifacts", experiment, runs, budget_known=False)
    source = RunSource.parse(experiment, uri)
    assert source.experiment == experiment and source.csv is None

    report = scaling_report(source, tmp_path / "out", budget=1e21, n_bootstrap=20)

    written = json.loads((tmp_path / "out" / "scaling_fit.json").read_text())
    assert written["runs"] == 21 and written["recommendation"]["budget"] == 1e21
    assert written["mlflow_run_id"] == report.mlflow_run_id
    for png in (report.envelope_png, report.allocation_png):
        with Image.open(png) as image:
            assert image.format == "PNG" and image.width > 500 and image.height > 400
    client = MlflowClient(tracking_uri=uri)
    logged = client.get_run(report.mlflow_run_id)
    assert logged.data.tags[ROLE_TAG] == FIT_ROLE and logged.info.status == "FINISHED"
    assert logged.data.metrics["n_opt_exponent"] == report.fit.n_opt.exponent
    artifacts = {a.path for a in client.list_artifacts(report.mlflow_run_id, "plots")}
    assert artifacts == {"plots/envelope.png", "plots/allocation.png"}
    # The fit now sits in the sweep's experiment, and the next read still sees only the 21 runs.
    again, skipped = runs_from_mlflow(uri, experiment)
    assert len(again) == 21 and skipped == []


def test_a_csv_source_is_not_logged(tmp_path: Path):
    from evaluation.scaling import write_runs_csv

    csv = write_runs_csv(isoflop_runs(PAPER_IMAGE_LIKE, budgets=(1e18, 1e19), sizes=5), tmp_path / "r.csv")
    source = RunSource.parse(str(csv), "sqlite:///unused.db")
    assert source.csv == csv
    report = scaling_report(source, tmp_path / "out", n_bootstrap=0)
    assert report.mlflow_run_id is None and report.json_path.exists()
    assert RunSource.parse(str(tmp_path / "typo.csv"), "sqlite:///x.db").csv == tmp_path / "typo.csv"
