"""The `videofoundry` CLI: help on every command, one-line errors with exit code 2, doctor."""

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestration.cli import app

CLI = [str(Path(sys.executable).parent / "videofoundry")]


def _all_command_paths():
    paths = [[]]
    for command in app.registered_commands:
        paths.append([command.name or command.callback.__name__.replace("_", "-")])
    for group in app.registered_groups:
        paths.append([group.name])
        for command in group.typer_instance.registered_commands:
            paths.append([group.name, command.name or command.callback.__name__.replace("_", "-")])
    return paths


@pytest.mark.parametrize("path", _all_command_paths(), ids=lambda p: " ".join(p) or "root")
def test_every_command_has_help(path):
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


def test_bad_configuration_is_one_line_and_exit_2(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "VIDEOFOUNDRY_COMPUTE__RAY_ADRESS": "ray://x"}
    result = subprocess.run(
        [*CLI, "run", "--home", str(tmp_path)], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: invalid configuration: compute.ray_adress: Extra inputs are not permitted"
    ]


def test_unusable_workspace_is_reported_and_nothing_written(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = subprocess.run(
        [*CLI, "run", "--home", str(blocker)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "not a directory" in result.stderr
    assert blocker.read_text() == "x"


def test_doctor_reports_each_component():
    result = subprocess.run([*CLI, "doctor", "--no-ray"], capture_output=True, text=True, check=False)
    lines = result.stdout.splitlines()
    for name in ["ffmpeg", "tesseract", "chromium", "brisque-model", "dagster", "mlflow", "gpu"]:
        assert any(line.split("]")[1].split()[0] == name for line in lines if "]" in line), name
    required_missing = [line for line in lines if line.startswith("[MISS]")]
    assert result.returncode == (1 if required_missing else 0)  # a missing tool is a runtime failure
