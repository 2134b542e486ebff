"""`videofoundry train-vae` killed with SIGKILL mid-run resumes from its last checkpoint: the step
count continues with no lost step beyond that checkpoint, into the same MLflow run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

_CLI = "from orchestration.cli import main; main()"


def _command(home: Path, data: Path, config: Path) -> list[str]:
    return [
        sys.executable,
        "-c",
        _CLI,
        "train-vae",
        "--home",
        str(home),
        "--data",
        str(data),
        "--train-config",
        str(config),
    ]


def test_kill_9_then_resume(tmp_path: Path, clip_paths: list[Path]) -> None:
    config = tmp_path / "vae.yaml"
    stage = {
        "name": "s",
        "steps": 20,
        "frames": 5,
        "height": 16,
        "width": 16,
        "video_batch": 1,
        "image_batch": 2,
    }
    overrides = {
        "stages": [stage], "checkpoint_every": 4, "eval_every": 1000, "sample_every": 1000, "log_every": 2,
        "disc_start_step": 6, "perceptual_max_frames": 1, "heldout_items": 1, "heldout_size": 16,
        "heldout_image_size": 16, "heldout_frames": 5,
    }  # fmt: skip
    config.write_text(yaml.safe_dump(overrides))
    home = tmp_path / "home"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    latest = home / "checkpoints" / "vae" / "latest"
    proc = subprocess.Popen(
        _command(home, clip_paths[0].parent, config),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 240
    killed_after = None
    while time.monotonic() < deadline and proc.poll() is None:
        if latest.is_file() and int(latest.read_text().strip().removeprefix("step_")) >= 8:
            os.kill(proc.pid, signal.SIGKILL)
            killed_after = int(latest.read_text().strip().removeprefix("step_"))
            break
        time.sleep(0.2)
    proc.wait(timeout=30)
    assert killed_after is not None, proc.stdout.read().decode()[-2000:] if proc.stdout else "no output"
    assert proc.returncode == -signal.SIGKILL
    # The kill may land during a later save: whatever `latest` names now is complete and loadable.
    last_saved = int(latest.read_text().strip().removeprefix("step_"))
    assert last_saved >= killed_after

    done = subprocess.run(
        _command(home, clip_paths[0].parent, config), env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"steps {last_saved} → 20 of 20" in done.stdout

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{home.resolve() / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1, "the resumed run must continue the same MLflow run"
    steps = sorted({m.step for m in client.get_metric_history(runs[0].info.run_id, "loss/l1")})
    assert steps[-1] == 20
    assert set(range(last_saved + 2, 21, 2)) <= set(steps)  # every logged step after the resume point
    assert runs[0].data.tags["data_version"].startswith("files:")
