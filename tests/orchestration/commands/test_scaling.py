"""`videofoundry scaling-fit`: JSON shape, text output, MLflow source, and exit code 2 on bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from evaluation.scaling import sweep_experiment
from orchestration.cli import app
from tests.evaluation.scaling.builders import CHINCHILLA, isoflop_runs
from tests.evaluation.scaling.test_runs import log_sweep

MAIN = [sys.executable, "-c", "from orchestration.cli import main; main()"]


def _csv_without_flops(path: Path) -> Path:
    runs = isoflop_runs(CHINCHILLA, budgets=(1e18, 1e19, 1e20), sizes=7)
    path.write_text(
        "params,tokens,loss\n"
        + "".join(f"{float(r.params)!r},{float(r.tokens)!r},{r.loss!r}\n" for r in runs)
    )
    return path


def test_json_output_shape(tmp_path: Path):
    csv = _csv_without_flops(tmp_path / "runs.csv")
    home = tmp_path / "home"
    args = ["scaling-fit", str(csv), "--json", "--budget", "1e21", "--bootstrap", "20", "--home", str(home)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for law in ("n_opt", "d_opt"):
        assert set(data[law]) == {"coefficient", "exponent", "ci"}
        assert set(data[law]["ci"]) == {"coefficient", "exponent"}
        low, high = data[law]["ci"]["exponent"]
        assert low <= data[law]["exponent"] <= high
    assert {"E", "A", "B", "alpha", "beta"} <= set(data["parametric"])
    assert data["recommendation"]["budget"] == 1e21
    assert data["recommendation"]["params"] > 0 and data["recommendation"]["predicted_loss"] > CHINCHILLA.E
    assert [b["runs"] for b in data["budgets"]] == [7, 7, 7]  # grouped by the 6·N·D FLOPs
    out = home / "reports" / "scaling" / "runs"
    assert data["plots"] == {"envelope": str(out / "envelope.png"), "allocation": str(out / "allocation.png")}
    assert Path(data["plots"]["envelope"]).stat().st_size > 10_000
    assert data["mlflow_run_id"] is None


def test_text_output_from_an_mlflow_experiment(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    experiment = sweep_experiment("videofoundry", "image")
    runs = isoflop_runs(CHINCHILLA, budgets=(1e18, 1e19), sizes=5)
    log_sweep(f"sqlite:///{home / 'mlflow.db'}", home / "mlartifacts", experiment, runs)
    out = tmp_path / "report"
    args = ["scaling-fit", experiment, "--bootstrap", "10", "--home", str(home), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"10 runs from MLflow experiment '{experiment}' (2 budgets with a minimum)" in result.output
    assert "N_opt = " in result.output and "logged to MLflow run" in result.output
    assert (out / "scaling_fit.json").exists() and (out / "allocation.png").exists()


def test_bad_input_is_a_user_error(tmp_path: Path):
    home = ["--home", str(tmp_path / "home")]
    result = CliRunner().invoke(app, ["scaling-fit", "never-ran", *home])
    assert result.exit_code == 2 and "error: no MLflow experiment 'never-ran'" in result.stderr
    few = tmp_path / "few.csv"
    few.write_text("params,tokens,loss\n1e6,1e7,3\n2e6,5e6,2.9\n")
    result = CliRunner().invoke(app, ["scaling-fit", str(few), *home])
    assert result.exit_code == 2 and "needs >= 5" in result.stderr
    csv = _csv_without_flops(tmp_path / "runs.csv")
    result = CliRunner().invoke(app, ["scaling-fit", str(csv), "--budget", "-5", "--bootstrap", "0", *home])
    assert result.exit_code == 2 and "positive number of FLOPs" in result.stderr


def test_missing_file_exits_2_with_one_error_line(tmp_path: Path):
    missing = tmp_path / "absent.csv"
    result = subprocess.run(
        [*MAIN, "scaling-fit", str(missing), "--home", str(tmp_path / "home")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {missing} does not exist; pass a CSV with columns params,tokens,flops,loss"
    )
