"""GPU scaling sweep of the image family (issue 21): ≥ 8 runs on one GPU, runs CSV + fit JSON.

Runs `orchestration.scaling_sweep.scaling_sweep_in_workspace` (the code path of `videofoundry
scaling-sweep`: the DiT trainer, MLflow, the latent cache) in a fresh workspace with the `gpu` sweep
preset (128 px images, batch 64, widths 192 … 512, 5 M … 75 M params) on `--device cuda`, on the
stand-in corpus (no curated tier in a fresh workspace). New runs stop being started once
`--max-minutes` have passed (the run in flight finishes); the fit uses whatever finished.

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
import json
import os
import sys
import tempfile
import time
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
from training.scaling.run import SweepOutcome  # noqa: E402
from training.tracking import TrackingSettings, default_tracking_uri  # noqa: E402

PAPER_EXPONENTS = {"b1": 0.5634, "b2": 0.4325}
GPU = {"preset": "gpu", "budgets": "1e14,3e14", "sizes": "w192-2x3,w256-2x4,w320-3x5,w384-3x6,w512-4x8"}
SMOKE = {"preset": "tiny", "budgets": "6e8,1.2e9", "sizes": "w32-1x1,w64-1x1,w64-1x2"}


class TimeUp(Exception):
    """Raised between runs once the sweep has used its minutes."""


def _device_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny 6-run sweep on CPU")
    parser.add_argument("--budgets", help=f"comma-separated FLOPs (default {GPU['budgets']})")
    parser.add_argument("--sizes", help="comma-separated ladder sizes of the preset")
    parser.add_argument("--max-minutes", type=float, default=11.0, help="start no run after this")
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "scaling_sweep_gpu_out"))
    args = parser.parse_args()
    defaults = SMOKE if args.smoke else GPU
    budgets = [float(b) for b in (args.budgets or defaults["budgets"]).split(",")]
    sizes = (args.sizes or defaults["sizes"]).split(",")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    home = Path(tempfile.mkdtemp(prefix="scaling_sweep_"))
    ws = Workspace.at(home).ensure()
    uri, artifacts = default_tracking_uri(home)
    tracking = TrackingSettings(uri=uri, artifact_location=artifacts, experiment="videofoundry")
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []

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
        if time.perf_counter() - started > 60 * args.max_minutes:
            raise TimeUp

    stopped_early = False
    try:
        scaling_sweep_in_workspace(
            ws, "image", budgets, tracking, preset=defaults["preset"],
            preset_overrides={"min_steps": 2} if args.smoke else None, sizes=sizes,
            device="auto" if args.smoke else "cuda", threads=1 if args.smoke else None, on_run=on_run,
        )  # fmt: skip
    except TimeUp:
        stopped_early = True
    wall = time.perf_counter() - started

    runs, skipped = runs_from_mlflow(uri, "videofoundry-scaling-image")
    csv = write_runs_csv(runs, out / "scaling_runs.csv")
    summary: dict[str, Any] = {
        "device": _device_name(),
        "preset": defaults["preset"],
        "budgets": budgets,
        "sizes": sizes,
        "runs": rows,
        "finished_runs": len(runs),
        "skipped_runs": skipped,
        "stopped_early": stopped_early,
        "wall_seconds": round(wall, 1),
        "train_seconds": round(sum(r["seconds"] for r in rows), 1),
        "paper": PAPER_EXPONENTS,
    }
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
