"""Spread over seeds of the DiT stage chain's learning bars (tests/training/dit/test_stages.py).

For each seed, runs the whole tiny stage chain on CPU (the test's four synthetic clips, training
seed = sampling seed offset) and prints one JSON line with the three quantities the test bars:
`loss_ratio` (sft final loss / image_256 final loss), `latent_margin_min` (dB, own clip's latent
PSNR minus the best other clip's, worst prompt) and `pixel_margin` (dB, mean decoded PSNR own −
others). Seeds run one after another in this process, one torch thread (as the test does).

    PYTHONPATH=. python benchmarks/learning_margins.py --seeds 0 1 2 3 4 5 6 7
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from training.dit.config import STAGE_ORDER, DiTTrainConfig
from training.dit.run import train_dit_stage
from training.dit.stages import prepare_stage
from training.tracking import TrackingSettings, default_tracking_uri

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.training.dit.fixtures import own_clip_scores, write_clips  # noqa: E402  (the test's own)


def measure(seed: int, root: Path) -> dict[str, float]:
    """Train the chain with `seed` under `root` and return the test's three quantities."""
    records = write_clips(root / "clips")
    config = DiTTrainConfig.preset("tiny").replace(seed=seed)
    uri, artifacts = default_tracking_uri(root / "home")
    tracking = TrackingSettings(uri=uri, artifact_location=artifacts, data_version="bench:clips@v1")
    results = {}
    for stage in STAGE_ORDER:
        plan = prepare_stage(
            config, stage, records, root / "ckpt", root / "latents", tracking, progress=False
        )
        results[stage] = train_dit_stage(plan)
    scores = own_clip_scores(results["sft"].checkpoint, config, records, root / "latents", seed=123 + seed)
    return {
        "loss_ratio": results["sft"].final_loss / results["image_256"].final_loss,
        "latent_margin_min": float(scores.latent_margins.min()),
        "pixel_margin": scores.pixel_margin,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(8)))
    args = parser.parse_args()
    torch.set_num_threads(1)
    for seed in args.seeds:
        tic = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"margins{seed}_") as tmp:
            figures = measure(seed, Path(tmp))
        print(
            json.dumps({"seed": seed, **figures, "seconds": round(time.perf_counter() - tic, 1)}), flush=True
        )


if __name__ == "__main__":
    main()
