"""`videofoundry plan-training`: the 13 B plan on 8 x 80 GB as text and JSON, and bad input."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from orchestration.cli import app

ARGS = ["plan-training", "--preset", "hunyuan-13b", "--gpus", "8", "--gpu-memory", "80", "--tokens", "67320"]


def test_json_plan_recommends_a_fitting_full_sharding_layout():
    result = CliRunner().invoke(app, [*ARGS, "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output.strip().splitlines()[-1])
    best = plan["recommended"]
    assert best["sharding"] == "full" and best["fits"] and best["total"] <= 72e9
    assert len(plan["options"]) == 3 * 4 * 3  # shardings x SP {1, 2, 4, 8} x checkpointing
    parts = ("weights", "gradients", "optimizer", "ema", "activations")
    assert best["total"] == sum(best[k] for k in parts)


def test_text_plan_names_the_recommendation():
    result = CliRunner().invoke(app, ARGS)
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("recommended: --sharding full")


def test_unknown_preset_is_a_user_error():
    result = CliRunner().invoke(app, ["plan-training", "--preset", "nope", "--gpus", "8", "--tokens", "10"])
    assert result.exit_code == 2 and "hunyuan-13b" in result.stderr
