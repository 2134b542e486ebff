"""`videofoundry train-lora` and `generate --lora`, in-process through Typer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from typer.testing import CliRunner

from orchestration.cli import app
from serving import read_mp4
from tests.training.dit.lora_data_builders import make_lora_folder

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _train(tmp_path: Path, data: Path, *extra: str):
    args = ["train-lora", "--model", "tiny-random", "--data", str(data), "--rank", "4", "--steps", "12",
            "--lr", "1e-2", "--out", str(tmp_path / "style.safetensors"), "--home", str(tmp_path / "home"), *extra]  # fmt: skip
    return CliRunner().invoke(app, args)


@pytest.mark.slow  # trains 12 steps, creates an MLflow registry and generates four videos (~40 s)
def test_train_lora_then_generate_with_it(tmp_path: Path) -> None:
    result = _train(tmp_path, make_lora_folder(tmp_path / "data"))
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert (
        summary["registered_model"] == "videofoundry-lora-style"
        and summary["uri"] == "models:/videofoundry-lora-style/1"
    )
    assert summary["clips"] == 3 and summary["latents_encoded"] == summary["samples"] == 5
    assert summary["data_version"].startswith("loradata:")
    with safe_open(str(tmp_path / "style.safetensors"), framework="pt") as handle:
        keys = set(handle.keys())  # noqa: SIM118
        meta = handle.metadata()
    assert "transformer.transformer_blocks.0.attn.to_q.lora_A.weight" in keys
    assert "transformer.single_transformer_blocks.0.proj_mlp.lora_B.weight" in keys
    assert meta["data_version"] == summary["data_version"] and meta["task"] == "t2v"

    def video(name: str, *lora: str) -> np.ndarray:
        out = tmp_path / f"{name}.mp4"
        args = ["generate", "--model", "tiny-random", "--prompt", "a red square moving right", "--out", str(out),
                "--frames", "5", "--steps", "4", "--home", str(tmp_path / "home"), "--cpu-threads", "1", *lora]  # fmt: skip
        run = CliRunner().invoke(app, args)
        assert run.exit_code == 0, run.output
        return read_mp4(out).frames

    base = video("base")
    assert np.array_equal(video("zero", "--lora", summary["uri"], "--lora-scale", "0"), base)
    strong = video("strong", "--lora", str(tmp_path / "style.safetensors"), "--lora-scale", "4")
    assert np.abs(strong.astype(int) - base).mean() > 0.5
    merged = video("merged", "--lora", summary["uri"], "--lora-scale", "4", "--lora-mode", "merge")
    # Merged weights equal the adapter's sum up to float rounding, which H.264 can turn into a few
    # levels at an odd pixel (measured: mean 0.003, max 4, 0.03% of values above 2).
    gap = np.abs(merged.astype(int) - strong)
    assert gap.mean() < 0.05 and (gap > 2).mean() < 0.002 and gap.max() <= 8


def test_train_lora_bad_input_is_one_line_naming_the_file(tmp_path: Path) -> None:
    data = make_lora_folder(tmp_path / "data", videos=1, images=1)
    (data / "still0.txt").unlink()
    result = _train(tmp_path, data)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {data / 'still0.png'}: no caption file still0.txt beside it"
    (data / "still0.png").unlink()
    (data / "broken.mp4").write_bytes(b"\x00" * 300)
    (data / "broken.txt").write_text("x")
    result = _train(tmp_path, data)
    assert result.exit_code == 2 and result.stderr.startswith(f"error: {data / 'broken.mp4'}: cannot be read")
    result = _train(tmp_path, data, "--targets", "attn,conv")
    assert result.exit_code == 2 and "conv" in result.stderr
    result = CliRunner().invoke(
        app, ["train-lora", "--model", "tiny-random", "--data", str(data), "--out", str(tmp_path / "x.pt")]
    )
    assert result.exit_code == 2 and "must end in .safetensors" in result.stderr
