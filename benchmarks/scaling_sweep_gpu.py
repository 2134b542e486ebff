"""GPU scaling sweep of the image family (issue 21): ≥ 8 runs on one GPU, runs CSV + fit JSON.

Runs `orchestration.scaling_sweep.scaling_sweep_in_workspace` (the code path of `videofoundry
scaling-sweep`: the DiT trainer, MLflow, the latent cache) in a fresh workspace with the `gpu` sweep
preset (128 px images, widths 128 … 512, 1.6 M … 75 M params) at batch `--batch` on `--device cuda`,
on `--standin-clips` clips of the stand-in corpus (no curated tier in a fresh workspace).

Budgets: unless `--budgets` names them, a probe first trains every size for 40 and 160 steps (own
MLflow experiment) and fits seconds = overhead + per-step × steps; then the largest consecutive
candidate budgets (a factor √10 apart) whose runs are predicted to fit `--minutes` are swept, each
with the sizes that get enough steps there (`choose_budgets`). New runs stop being started at 1.25 ×
`--minutes`; the fit uses whatever finished.

Writes under --out (default $OUT, else ./scaling_sweep_gpu_out):

    scaling_runs.csv         name,params,tokens,flops,loss,budget (`evaluation.scaling.runs_from_csv`)
    fit/scaling_fit.json     the fit (`videofoundry scaling-fit` JSON), envelope.png, allocation.png
    scaling_sweep_gpu.json   device, wall and per-run times, steps/s, the fitted exponents beside
                             the paper's (b1 0.5634, b2 0.4325), or why no fit was possible

Usage (device): python benchmarks/scaling_sweep_gpu.py, with the wheels of `benchmarks/gpu_wheels.sh`
carried and installed (the GPU image has no MLflow or PyAV).
`--smoke` runs a 6-run tiny sweep on CPU (the same code path, minutes).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from evaluation.scaling import (  # noqa: E402
    RunSource,
    ScalingDataError,
    runs_from_mlflow,
    scaling_report,
    write_runs_csv,
)
from orchestration.scaling_sweep import scaling_sweep_in_workspace  # noqa: E402
from orchestration.workspace import Workspace  # noqa: E402
from training.scaling.plan import SweepConfig, plan_sweep  # noqa: E402
from training.scaling.run import SweepOutcome  # noqa: E402
from training.tracking import TrackingSettings, default_tracking_uri  # noqa: E402

PAPER_EXPONENTS = {"b1": 0.5634, "b2": 0.4325}
GPU = {"preset": "gpu", "sizes": "w128-1x2,w192-2x3,w256-2x4,w320-3x5,w384-3x6,w512-4x8"}
SMOKE = {"preset": "tiny", "budgets": "6e8,1.2e9", "sizes": "w32-1x1,w64-1x1,w64-1x2"}
# Candidate IsoFLOP budgets, a factor √10 apart; the probe decides which consecutive ones fit the minutes.
CANDIDATE_BUDGETS = tuple(10 ** (13 + k / 2) for k in range(11))  # 1e13 … 1e18
PROBE_STEPS = (40, 160)
WARMUP_STEPS = 8


class NoWindow(Exception):
    """No run of consecutive candidate budgets fits the minutes (with the probed step costs)."""


class TimeUp(Exception):
    """Raised between runs once the sweep has used its minutes."""


@dataclass(frozen=True)
class StepCost:
    """Seconds of one run of a size: `overhead` (set-up, checkpoint, logging) + `per_step` × steps."""

    overhead: float
    per_step: float

    def seconds(self, steps: int) -> float:
        return self.overhead + self.per_step * steps


def _device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def _budget_for_steps(config: SweepConfig, size: str, steps: int) -> float:
    """The budget that gives `size` exactly `steps` steps (its FLOPs per step × steps)."""
    run = plan_sweep("image", [1.0e30], config, [size]).runs[0]
    return steps * run.flops / run.steps


def probe(
    ws: Workspace,
    tracking: TrackingSettings,
    preset: str,
    overrides: dict[str, Any],
    sizes: list[str],
    device: str,
    standin_clips: int,
) -> tuple[dict[str, StepCost], list[dict[str, Any]]]:
    """Per size, train PROBE_STEPS steps twice through the sweep's own code path (a separate
    experiment) and fit seconds = overhead + per_step · steps. The first run also writes the stand-in
    corpus and its latents, which the sweep then reuses."""
    config = SweepConfig.preset(preset, **overrides)
    probe_tracking = dataclasses.replace(tracking, experiment="probe")
    rows: list[dict[str, Any]] = []
    costs = {}
    began = time.perf_counter()  # one-time work (stand-in corpus, latents, CUDA start) out of the fits
    scaling_sweep_in_workspace(
        ws, "image", [_budget_for_steps(config, sizes[0], WARMUP_STEPS)], dataclasses.replace(tracking, experiment="warmup"),
        preset=preset, preset_overrides={**overrides, "min_steps": 1}, sizes=[sizes[0]], device=device,  # type: ignore[arg-type]
        standin_clips=standin_clips,
    )  # fmt: skip
    rows.append({"warmup_seconds": round(time.perf_counter() - began, 2)})
    print(json.dumps(rows[-1]), flush=True)
    for size in sizes:
        seconds = []
        for steps in PROBE_STEPS:
            budget = _budget_for_steps(config, size, steps)
            began = time.perf_counter()
            scaling_sweep_in_workspace(
                ws, "image", [budget], probe_tracking, preset=preset,
                preset_overrides={**overrides, "min_steps": 1}, sizes=[size], device=device,  # type: ignore[arg-type]
                standin_clips=standin_clips,
            )  # fmt: skip
            seconds.append(time.perf_counter() - began)
        per_step = max((seconds[1] - seconds[0]) / (PROBE_STEPS[1] - PROBE_STEPS[0]), 1e-4)
        costs[size] = StepCost(max(seconds[1] - per_step * PROBE_STEPS[1], 0.0), per_step)
        rows.append({"size": size, "probe_seconds": [round(x, 2) for x in seconds],
                     "per_step_s": round(per_step, 4), "overhead_s": round(costs[size].overhead, 2)})  # fmt: skip
        print(json.dumps(rows[-1]), flush=True)
    return costs, rows


def choose_budgets(
    config: SweepConfig,
    sizes: list[str],
    costs: dict[str, StepCost],
    seconds: float,
    max_run_share: float = 0.3,
) -> tuple[dict[float, list[str]], float]:
    """The consecutive candidate budgets with the largest top budget whose runs fit `seconds`.

    At each budget a size takes part when it gets at least `min_steps` steps and its run would take at
    most `max_run_share` of the time (very long runs of small sizes far left of the minimum say little).
    A window needs at least 3 sizes at every budget and 8 runs in all; 3 budgets are preferred to 2.
    Returns {budget: sizes} and the predicted seconds.
    """
    per_budget: dict[float, list[str]] = {}
    for budget in CANDIDATE_BUDGETS:
        plan = plan_sweep("image", [budget], config, sizes)
        per_budget[budget] = [
            r.size for r in plan.runs if costs[r.size].seconds(r.steps) <= max_run_share * seconds
        ]

    def predicted(window: tuple[float, ...]) -> float:
        total = 0.0
        for budget in window:
            for run in plan_sweep("image", [budget], config, per_budget[budget]).runs:
                total += costs[run.size].seconds(run.steps)
        return total

    for width in (3, 2):
        for top in range(len(CANDIDATE_BUDGETS) - 1, width - 2, -1):
            window = CANDIDATE_BUDGETS[top - width + 1 : top + 1]
            if any(len(per_budget[b]) < 3 for b in window) or sum(len(per_budget[b]) for b in window) < 8:
                continue
            if (total := predicted(window)) <= seconds:
                return {b: per_budget[b] for b in window}, total
    raise NoWindow(f"no window of budgets fits {seconds:.0f} s with the probed step costs {costs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny 6-run sweep on CPU")
    parser.add_argument("--budgets", help="comma-separated FLOPs (default: chosen from the probe)")
    parser.add_argument("--sizes", help="comma-separated ladder sizes of the preset")
    parser.add_argument("--minutes", type=float, default=8.0, help="training time the sweep may use")
    parser.add_argument("--batch", type=int, default=256, help="images per step (the gpu preset's is 64)")
    parser.add_argument("--standin-clips", type=int, default=256, help="stand-in corpus clips (images)")
    parser.add_argument(
        "--bracket", type=int, default=0, help="bracketing rounds per budget (scaling-sweep --bracket)"
    )
    parser.add_argument("--costs", type=Path, help="skip the probe: step costs from an earlier probe's JSON")
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "scaling_sweep_gpu_out"))
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    home = Path(tempfile.mkdtemp(prefix="scaling_sweep_"))
    ws = Workspace.at(home).ensure()
    uri, artifacts = default_tracking_uri(home)
    tracking = TrackingSettings(uri=uri, artifact_location=artifacts, experiment="videofoundry")
    started = time.perf_counter()
    summary: dict[str, Any] = {"device": _device_name(), "paper": PAPER_EXPONENTS}
    if args.smoke:
        preset, overrides, device, standin = "tiny", {"min_steps": 2}, "auto", 32
        schedule = {float(b): SMOKE["sizes"].split(",") for b in SMOKE["budgets"].split(",")}
    else:
        preset, overrides, device, standin = (
            "gpu",
            {"image_batch_size": args.batch},
            "cuda",
            args.standin_clips,
        )
        config = SweepConfig.preset(preset, **overrides)
        sizes = (args.sizes or GPU["sizes"]).split(",")
        if args.budgets:
            schedule = {float(b): sizes for b in args.budgets.split(",")}
        else:
            if args.costs:  # a earlier probe's rows (benchmarks/results/scaling_sweep_gpu_probe_*.json)
                summary["probe"] = json.loads(args.costs.read_text())["probe"]
                costs = {
                    r["size"]: StepCost(r["overhead_s"], r["per_step_s"])
                    for r in summary["probe"]
                    if "size" in r
                }
            else:
                costs, summary["probe"] = probe(ws, tracking, preset, overrides, sizes, device, standin)
            try:
                schedule, summary["predicted_seconds"] = choose_budgets(
                    config, sizes, costs, 60 * args.minutes
                )
            except NoWindow as error:
                summary["error"] = str(error)
                (out / "scaling_sweep_gpu.json").write_text(json.dumps(summary, indent=1))
                raise SystemExit(str(error)) from None
    summary.update(preset=preset, overrides=overrides, standin_clips=standin,
                   schedule={f"{b:.3g}": s for b, s in schedule.items()})  # fmt: skip
    print(
        json.dumps({"schedule": summary["schedule"], "predicted_seconds": summary.get("predicted_seconds")})
    )
    rows: list[dict[str, Any]] = []
    sweep_started = time.perf_counter()

    def on_run(outcome: SweepOutcome) -> None:
        run = outcome.run
        row = {
            "size": run.size, "params": run.params, "budget": run.budget, "steps": run.steps,
            "batch": run.batch_size, "tokens": run.tokens, "flops": run.flops,
            "loss": outcome.finished.loss, "seconds": round(outcome.seconds, 2),
            "steps_per_s": round(run.steps / max(outcome.seconds, 1e-9), 2),
        }  # fmt: skip
        rows.append(row)
        print(json.dumps(row), flush=True)
        if not args.smoke and time.perf_counter() - sweep_started > 60 * args.minutes * 1.25:
            raise TimeUp

    stopped_early = False
    try:
        for budget, budget_sizes in schedule.items():
            scaling_sweep_in_workspace(
                ws, "image", [budget], tracking, preset=preset, preset_overrides=overrides, sizes=budget_sizes,
                device=device, threads=1 if args.smoke else None, on_run=on_run,  # type: ignore[arg-type]
                standin_clips=standin, bracket=args.bracket,
            )  # fmt: skip
    except TimeUp:
        stopped_early = True

    runs, skipped = runs_from_mlflow(uri, "videofoundry-scaling-image")
    csv = write_runs_csv(runs, out / "scaling_runs.csv")
    summary.update(
        runs=rows,
        finished_runs=len(runs),
        skipped_runs=skipped,
        stopped_early=stopped_early,
        wall_seconds=round(time.perf_counter() - started, 1),
        train_seconds=round(sum(r["seconds"] for r in rows), 1),
    )
    try:
        report = scaling_report(RunSource(csv=csv), out / "fit", n_bootstrap=args.bootstrap)
        fit = report.to_dict()
        summary["fitted"] = {
            "b1": fit["n_opt"]["exponent"],
            "b1_ci": fit["n_opt"]["ci"]["exponent"],
            "b2": fit["d_opt"]["exponent"],
            "b2_ci": fit["d_opt"]["ci"]["exponent"],
            "parametric": fit["parametric"],
        }
        summary["fit_json"] = str(report.json_path)
    except ScalingDataError as error:
        summary["fitted"] = None
        summary["fit_error"] = str(error)
    (out / "scaling_sweep_gpu.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}), flush=True)


if __name__ == "__main__":
    main()
