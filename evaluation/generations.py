"""Evaluation generations: one video per (prompt, seed) for a model version, made through `serving`.

The same `serving.generate` call serves the demo, the CLI and these evaluation sets, so what raters
judge is exactly what users get. Each generation is stored with its prompt, seed, parameters and the
model version that made it; the automatic metrics and gates come from `evaluation.video_metrics`
(`evaluate_videos` over the table's paths). Files are written atomically: a crash leaves no
half-written mp4 behind.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from evaluation.human_eval.prompts import PromptSpec
from serving import GenerationSettings, ServingConfig, generate, read_mp4, write_mp4

GENERATIONS_SCHEMA = pa.schema(
    [
        ("prompt_key", pa.string()),
        ("prompt", pa.string()),
        ("seed", pa.int64()),
        ("model_ref", pa.string()),
        ("model_version", pa.string()),
        ("path", pa.string()),
        ("frames", pa.int64()),
        ("height", pa.int64()),
        ("width", pa.int64()),
    ]
)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "model"


def serving_generator(
    video_dir: Path,
    settings: GenerationSettings,
    tracking_uri: str | None = None,
    serving_config: ServingConfig | None = None,
) -> Callable[[str, int, str], Path]:
    """A `generate(prompt, seed, model_ref) -> mp4 path` callable backed by `serving.generate`.

    Every video uses `settings` with its own seed; a video already in `video_dir` for the same
    model, seed, prompt, settings and serving config is reused (generation is deterministic).
    """
    video_dir.mkdir(parents=True, exist_ok=True)
    made_with = f"{settings}|{serving_config}"

    def generate_to_file(prompt: str, seed: int, model_ref: str) -> Path:
        digest = hashlib.sha256(f"{model_ref}|{seed}|{prompt}|{made_with}".encode()).hexdigest()[:12]
        path = video_dir / f"{_slug(model_ref)}-{seed}-{digest}.mp4"
        if path.exists():  # made the same way before: deterministic, reuse
            return path
        video = generate(
            prompt,
            model=model_ref,
            config=serving_config,
            tracking_uri=tracking_uri,
            **asdict(replace(settings, seed=seed)),
        )
        tmp = path.with_name(f".{path.stem}.tmp.mp4")
        write_mp4(video, tmp, thumbnail=False)
        os.replace(tmp, path)
        return path

    return generate_to_file


def evaluation_set(
    model_ref: str,
    prompts: Sequence[PromptSpec],
    seeds: Sequence[int],
    generate_to_file: Callable[[str, int, str], Path],
    model_version: str = "",
    progress: Callable[[int, int], None] | None = None,
) -> pa.Table:
    """Generate every (prompt, seed) for `model_ref`; return the generations table (GENERATIONS_SCHEMA)."""
    rows: dict[str, list] = {name: [] for name in GENERATIONS_SCHEMA.names}
    total, done = len(prompts) * len(seeds), 0
    for prompt in prompts:
        for seed in seeds:
            path = generate_to_file(prompt.text, seed, model_ref)
            video = read_mp4(path)
            frames = np.asarray(video.frames)
            rows["prompt_key"].append(prompt.key)
            rows["prompt"].append(prompt.text)
            rows["seed"].append(int(seed))
            rows["model_ref"].append(model_ref)
            rows["model_version"].append(model_version or str(video.metadata.get("model_version", "")))
            rows["path"].append(str(path))
            rows["frames"].append(int(frames.shape[0]))
            rows["height"].append(int(frames.shape[1]))
            rows["width"].append(int(frames.shape[2]))
            done += 1
            if progress:
                progress(done, total)
    return pa.table(rows, schema=GENERATIONS_SCHEMA)
