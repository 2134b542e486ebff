"""`videofoundry plan-training`: per-GPU memory of DiT training layouts and the one to use.

Thin: `training.memory_plan.plan_training` does the arithmetic; this prints its table or JSON.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from orchestration.cli_app import UserError, app


@app.command("plan-training")
def plan_training_command(
    preset: Annotated[str, typer.Option("--preset", help="model.dit_config preset, e.g. hunyuan-13b.")],
    gpus: Annotated[int, typer.Option("--gpus", help="GPUs of the run (one rank each).")],
    tokens: Annotated[int, typer.Option("--tokens", help="Video tokens per sample (after patching).")],
    gpu_memory: Annotated[float, typer.Option("--gpu-memory", help="GB of memory per GPU.")] = 80.0,
    text_tokens: Annotated[int, typer.Option("--text-tokens", help="Text tokens per sample.")] = 256,
    micro_batch: Annotated[int, typer.Option("--micro-batch", help="Samples per micro-batch.")] = 1,
    precision: Annotated[
        str, typer.Option("--precision", help="bf16 (mixed precision, 2-byte compute) | fp32.")
    ] = "bf16",
    json_out: Annotated[bool, typer.Option("--json", help="Print the plan as one JSON object.")] = False,
) -> None:
    """Per-GPU memory (weights, gradients, optimizer, EMA, activations) of every sharding x SP x
    checkpointing layout, and the recommended one (the cheapest that fits)."""
    from model.dit_config import DiTConfig
    from training.memory_plan import PlanError, format_plan, plan_training

    if precision not in ("bf16", "fp32"):
        raise UserError(f"--precision must be bf16 or fp32, got {precision!r}")
    try:
        config = DiTConfig.preset(preset)
    except (KeyError, ValueError) as error:
        raise UserError(str(error)) from error
    try:
        plan = plan_training(
            config,
            gpus,
            gpu_memory,
            tokens,
            text_tokens,
            micro_batch,
            compute_bytes=2 if precision == "bf16" else 4,
        )
    except PlanError as error:
        raise UserError(str(error)) from error
    typer.echo(json.dumps(plan.to_dict()) if json_out else format_plan(plan))
