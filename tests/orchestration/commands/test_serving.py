"""`videofoundry generate` and `videofoundry serve demo` registration, in-process through Typer."""

from __future__ import annotations

from pathlib import Path

import skimage
from typer.testing import CliRunner

from orchestration.cli import app
from orchestration.cli_app import serve_app
from serving import read_mp4

PHOTO = Path(skimage.__file__).parent / "data" / "coffee.png"


def test_generate_t2v_and_i2v_write_mp4_and_thumbnail(tmp_path: Path) -> None:
    runner = CliRunner()
    home = ["--home", str(tmp_path / "home"), "--cpu-threads", "1", "--model", "tiny-random"]
    out = tmp_path / "kite.mp4"
    result = runner.invoke(
        app, ["generate", "--prompt", "a red kite", "--out", str(out), "--seed", "3", *home]
    )
    assert result.exit_code == 0, result.output
    assert "with tiny-random (seed 0, untrained)" in result.output
    video = read_mp4(out)
    assert (video.num_frames, video.height, video.width) == (9, 64, 96) and video.fps == 8.0
    assert video.metadata["seed"] == 3 and out.with_suffix(".png").exists()
    i2v_out = tmp_path / "coffee.mp4"
    args = [
        "generate",
        "--prompt",
        "steam rises",
        "--image",
        str(PHOTO),
        "--out",
        str(i2v_out),
        "--frames",
        "5",
    ]
    result = runner.invoke(app, [*args, "--stability", *home])
    assert result.exit_code == 0, result.output
    assert read_mp4(i2v_out).metadata["mode"] == "i2v"


def test_generate_bad_input_is_a_user_error(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["generate", "--prompt", "x", "--home", str(tmp_path / "home")]
    result = runner.invoke(
        app, [*base, "--out", str(tmp_path / "a.mp4"), "--model", "tiny-random", "--frames", "8"]
    )
    assert result.exit_code == 2 and "frames 8 is not of the form 4n+1" in result.stderr
    result = runner.invoke(app, [*base, "--out", str(tmp_path / "a.mp4")])  # empty registry, no --model
    assert result.exit_code == 2 and "no 'champion' alias" in result.stderr
    result = runner.invoke(app, [*base, "--out", str(tmp_path / "a.gif"), "--model", "tiny-random"])
    assert result.exit_code == 2 and "must be a .mp4" in result.stderr


def test_serve_demo_is_registered_for_up() -> None:
    names = [c.name for c in serve_app.registered_commands]
    assert "demo" in names
    from orchestration.services import platform_services
    from orchestration.workspace import Workspace

    services = platform_services(Workspace.at(Path("/tmp/unused-home")))
    demo = next(s for s in services if s.name == "demo")
    assert demo.argv[-4:] == ["serve", "demo", "--port", "7860"]


def test_generate_rewrite_prints_the_rewritten_prompt_and_follows_the_exit_codes(tmp_path: Path) -> None:
    from tests.serving.chat_server import chat_server, completion, refused_url

    runner = CliRunner()
    base = ["generate", "--prompt", "kite", "--out", str(tmp_path / "k.mp4"), "--model", "tiny-random",
            "--home", str(tmp_path / "home"), "--cpu-threads", "1", "--frames", "1", "--steps", "1"]  # fmt: skip
    with chat_server() as server:
        server.reply = lambda body: (200, completion("Rewritten prompt: A red kite over a grey sea."))
        url = ["--rewrite-url", server.base_url, "--rewrite-model", "served-llm"]
        result = runner.invoke(app, [*base, "--rewrite", "master", *url])
        assert result.exit_code == 0, result.output
        assert "rewritten prompt (master): A red kite over a grey sea." in result.output
        assert read_mp4(tmp_path / "k.mp4").metadata["prompt_original"] == "kite"
        (_, _, body), = server.requests  # fmt: skip
        assert body["model"] == "served-llm" and body["messages"][1]["content"] == "Request: kite"
        result = runner.invoke(app, [*base, "--rewrite", "poetic", *url])
        assert result.exit_code == 2 and "error: --rewrite 'poetic' must be normal or master" in result.stderr
        server.reply = lambda body: (500, "overloaded")
        result = runner.invoke(app, [*base, "--rewrite", "normal", *url])
        assert result.exit_code == 1
        assert (
            f"error: prompt rewrite endpoint {server.base_url}/chat/completions answered HTTP 500"
            in result.stderr
        )
    dead = refused_url()
    result = runner.invoke(app, [*base, "--rewrite", "normal", "--rewrite-url", dead])
    assert result.exit_code == 1 and f"{dead}/chat/completions is unreachable" in result.stderr
