"""The CLI's conventions (orchestration.cli_app): exit codes 0/1/2, one `error:` line, tracebacks only
with --verbose, --version, -v/-q logging; and a battery of bad arguments against every command."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.cli_app import MAX_SEED, CommandFailure, UserError, error_line, exit_code_for
from orchestration.cli_logging import Verbosity, configure_logging, release_logging

REPO = Path(__file__).resolve().parents[2]
HUGE = str(2**70)


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Awkward inputs: a folder, a plain file, a binary file, malformed YAML, an audio-only m4a."""
    root = tmp_path_factory.mktemp("bad_inputs")
    (root / "folder").mkdir()
    (root / "file").write_text("x")
    (root / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (root / "malformed.yaml").write_text("a: [1,\n")
    (root / "runs.csv").write_text("params,tokens,loss\n" + "".join(f"{n},{n * 10},3\n" for n in range(1, 8)))
    audio = root / "audio.m4a"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:duration=1",
            str(audio),
        ],
        check=True,
    )
    return {
        "dir": root / "folder",
        "file": root / "file",
        "under_file": root / "file" / "x.mp4",
        "binary": root / "binary.yaml",
        "malformed": root / "malformed.yaml",
        "missing": root / "missing.yaml",
        "audio": audio,
        "csv": root / "runs.csv",
        "home": root / "home",
    }


# (arguments with {placeholders} from the `bad` fixture, exit code, text the error line holds)
BATTERY = [
    (["no-such-command"], 2, "No such command"),
    (["-v", "-q", "doctor"], 2, "exclude each other"),
    (["run", "--config", "{dir}"], 2, "is a folder"),
    (["run", "--config", "{binary}"], 2, "not a text (YAML) file"),
    (["run", "--config", "{missing}"], 2, "does not exist"),
    (["run", "--home", "{file}"], 2, "not a directory"),
    (["train-vae", "--train-config", "{malformed}"], 2, "not valid YAML"),
    (["train-vae", "--train-config", "{binary}"], 2, "not a text (YAML) file"),
    (["train-vae", "--train-config", "{dir}"], 2, "is a folder"),
    (["train-vae", "--max-steps", "-5"], 2, "--max-steps"),
    (["train-vae", "--max-steps", "2.5"], 2, "--max-steps"),
    (["train-dit", "--stage", "bogus"], 2, "unknown stage"),
    (["train-dit", "--stage", "image_256", "--clips", "{missing}"], 2, "missing.yaml"),
    (
        ["generate", "--prompt", "a", "--model", "tiny-random", "--out", "{under_file}"],
        2,
        "is a file, not a folder",
    ),
    (["generate", "--prompt", "a", "--model", "tiny-random", "--out", "{dir}"], 2, "must be a .mp4"),
    (
        ["generate", "--prompt", "a", "--out", "{dir}/a.mp4", "--model", "tiny-random", "--seed", HUGE],
        2,
        "--seed",
    ),
    (
        ["generate", "--prompt", "a", "--out", "{dir}/a.mp4", "--model", "tiny-random", "--seed", "-1"],
        2,
        "--seed",
    ),
    (
        ["generate", "--prompt", "a", "--out", "{dir}/a.mp4", "--model", "tiny-random", "--frames", "8.5"],
        2,
        "--frames",
    ),
    (
        ["generate", "--prompt", "a", "--out", "{dir}/a.mp4", "--model", "tiny-random", "--frames", HUGE],
        2,
        "frames",
    ),
    (["generate", "--prompt", "a", "--out", "{dir}/a.mp4", "--model", "bogus"], 2, "model reference 'bogus'"),
    (
        [
            "generate",
            "--prompt",
            "a",
            "--out",
            "{dir}/a.mp4",
            "--model",
            "tiny-random",
            "--image",
            "{missing}",
        ],
        2,
        "does not exist",
    ),
    (["camera-motion", "{audio}"], 2, "no video stream"),
    (["camera-motion", "{dir}"], 2, "no such video file"),
    (["camera-motion", "{audio}", "--start", "-1"], 2, "--start"),
    (["caption", "{audio}"], 2, "no video stream"),
    (["caption", "{binary}"], 2, "not a readable media file"),
    (["demo-corpus", "{file}"], 2, "cannot create"),
    (["demo-corpus", "{dir}", "--seed", HUGE], 2, "--seed"),
    (["demo", "--seed", HUGE], 2, "--seed"),
    (["curate", "{file}"], 2, "not a folder"),
    (["eval-vae", "--checkpoint", "{missing}", "--out", "{dir}/r.json"], 2, "does not exist"),
    (["eval-vae", "--checkpoint", "{dir}", "--out", "{under_file}"], 2, "is a file, not a folder"),
    (["eval-vae", "--checkpoint", "{dir}", "--out", "{dir}/r.json", "--limit", "0"], 2, "--limit"),
    (["eval-videos", "{file}"], 2, "not a folder"),
    (["eval-videos", "{dir}", "--table", "{under_file}"], 2, "--table"),
    (["eval-report", "no-such-campaign"], 2, "no campaign"),
    (["eval-report", "x", "--out", "{dir}"], 2, "is a folder"),
    (["eval-rater", "alice", "--role", "king"], 2, "role 'king'"),
    (["scaling-fit", "{dir}/absent.csv"], 2, "does not exist"),
    (["scaling-fit", "{csv}", "--seed", HUGE], 2, "--seed"),
    (["serve", "demo", "--port", "70000"], 2, "--port"),
    (["serve", "demo", "--model", "bogus"], 2, "model reference 'bogus'"),
    (["serve", "raters", "--port", HUGE], 2, "--port"),
    (["up", "--demo-port", "-1"], 2, "--demo-port"),
]
NEEDS_HOME = {"run", "train-vae", "train-dit", "generate", "demo", "curate", "eval-report", "eval-rater",
              "scaling-fit", "serve", "up"}  # fmt: skip


def _args(template: list[str], paths: dict[str, Path]) -> list[str]:
    args = [part.format(**{k: str(v) for k, v in paths.items()}) for part in template]
    if template[0] in NEEDS_HOME and "--home" not in template:
        args += ["--home", str(paths["home"])]
    return args


@pytest.mark.parametrize(
    ("template", "code", "text"), BATTERY, ids=lambda v: " ".join(v) if isinstance(v, list) else None
)
def test_bad_arguments_give_one_error_line_and_the_exit_code(bad, template, code, text):
    result = CliRunner().invoke(app, _args(template, bad))
    assert result.exit_code == code, (result.stdout, result.stderr)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and text in errors[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not isinstance(result.exception, BaseException) or isinstance(result.exception, SystemExit)


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args],
        capture_output=True, text=True, env=env, check=False, timeout=timeout,
    )  # fmt: skip


def test_a_real_process_exits_2_for_bad_input_and_prints_the_traceback_only_with_verbose(bad):
    plain = _cli("train-vae", "--train-config", str(bad["binary"]), "--home", str(bad["home"]))
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert plain.stderr.splitlines() == [f"error: --train-config {bad['binary']} is not a text (YAML) file"]
    verbose = _cli("-v", "run", "--config", str(bad["dir"]), "--home", str(bad["home"]))
    assert verbose.returncode == 2 and "Traceback (most recent call last)" in verbose.stderr
    assert verbose.stderr.splitlines()[-1] == f"error: config file {bad['dir']} is a folder; give a YAML file"


def test_serve_demo_with_an_unloadable_model_fails_before_binding(bad):
    # Were the port bound first, the process would serve until the timeout.
    result = _cli(
        "serve", "demo", "--model", str(bad["dir"]), "--port", "0", "--home", str(bad["home"]), timeout=90
    )
    assert result.returncode == 2 and result.stderr.splitlines()[-1].startswith("error: ")
    assert "http://127.0.0.1" not in result.stdout + result.stderr and "Traceback" not in result.stderr


def test_version_and_no_arguments():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("videofoundry ")
    assert result.stdout.split()[1][0].isdigit()
    assert CliRunner().invoke(app, []).exit_code == 2  # usage: the help is shown


def test_exit_codes_by_kind_of_exception():
    from pydantic import BaseModel, ValidationError

    from evaluation.scaling import ScalingDataError
    from model.presets import PresetError
    from orchestration.config import ConfigError
    from serving import NoChampionError
    from training.checkpointing import CheckpointError

    class Sized(BaseModel):
        n: int

    with pytest.raises(ValidationError) as invalid:
        Sized(n="x")  # type: ignore[arg-type]
    bad_input = [UserError("x"), ConfigError("x"), PresetError("x"), ScalingDataError("x"),
                 NoChampionError("x"), invalid.value, FileNotFoundError(2, "gone", "a.mp4"),
                 IsADirectoryError(21, "is a directory", "d")]  # fmt: skip
    runtime = [CommandFailure("x"), CheckpointError("x"), KeyError("x"), ValueError("numpy said"),
               RuntimeError("x"), OSError(28, "No space left on device")]  # fmt: skip
    assert [exit_code_for(e) for e in bad_input] == [2] * len(bad_input)
    assert [exit_code_for(e) for e in runtime] == [1] * len(runtime)
    # Our own runtime errors are expected failures: their message alone; anything else names its type.
    assert error_line(CheckpointError("checkpoint step_4 is torn")) == "checkpoint step_4 is torn"
    assert error_line(KeyError("x")) == "KeyError: 'x' (run with --verbose for the traceback)"
    assert (
        error_line(FileNotFoundError(2, "No such file or directory", "a.mp4"))
        == "a.mp4: No such file or directory"
    )


def test_a_runtime_failure_is_exit_1_with_a_hint_for_the_traceback(tmp_path, monkeypatch):
    import orchestration.doctor as doctor

    def broken(start_ray: bool):  # a bug in a command: not one of our bad-input errors
        raise KeyError("ffmpeg")

    monkeypatch.setattr(doctor, "run_checks", broken)
    result = CliRunner().invoke(app, ["doctor", "--no-ray"])
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == ["error: KeyError: 'ffmpeg' (run with --verbose for the traceback)"]
    verbose = CliRunner().invoke(app, ["--verbose", "doctor", "--no-ray"])
    assert verbose.exit_code == 1 and "Traceback" in verbose.stderr and "in broken" in verbose.stderr


@pytest.mark.parametrize(
    ("verbosity", "shown"),
    [
        (Verbosity.QUIET, ["warning: training warns"]),
        (Verbosity.NORMAL, ["stage sft: resumed at step 4", "warning: training warns", "warning: library warns"]),
        (Verbosity.VERBOSE, ["training debug", "stage sft: resumed at step 4", "training warns", "library info", "library warns"]),
    ],
)  # fmt: skip
def test_log_levels_per_verbosity(capsys, verbosity, shown):
    root_level = logging.getLogger().level
    configure_logging(verbosity)
    try:
        ours, library = logging.getLogger("training.dit.trainer"), logging.getLogger("a_library.module")
        ours.debug("training debug")
        ours.info("stage %s: resumed at step %d", "sft", 4)
        ours.warning("training warns")
        library.info("library info")
        library.warning("library warns")
        library.error("library fails")
        lines = capsys.readouterr().err.splitlines()
        expected = [*shown, "library fails" if verbosity is Verbosity.VERBOSE else "error: library fails"]
        assert [
            line.split(": ", 1)[1] if verbosity is Verbosity.VERBOSE else line for line in lines
        ] == expected
        assert (os.environ.get("TQDM_DISABLE") == "1") == (verbosity is Verbosity.QUIET)
    finally:
        release_logging()
    assert logging.getLogger().level == root_level and logging.getLogger("training").level == logging.NOTSET


def test_cli_seed_bound_is_the_serving_bound():
    from serving.limits import MAX_SEED as SERVING_MAX_SEED

    assert MAX_SEED == SERVING_MAX_SEED == 2**63 - 1


def test_serve_raters_on_a_busy_port_is_one_error_line(bad):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(app, ["serve", "raters", "--port", str(port), "--home", str(bad["home"])])
    assert result.exit_code == 2 and result.stderr.splitlines() == [
        f"error: port {port} on 127.0.0.1 is in use"
    ]
