"""Parallel inference through the one serving API: `serving.generate` with the DiT sequence-parallel.

The glue is one line after loading: `parallelize_dit(serving.load_pipeline(model, config=...).transformer,
group)`; `generate` then reuses the cached pipeline, and every rank (same request, same seed)
returns the whole video. Here 2 gloo ranks run T2V (with real CFG) and I2V on `tiny-random` and
compare the frames with the same requests before parallelizing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import serving
from tests.training.parallel.ranks import run_ranks
from training.parallel import is_sequence_parallel, parallelize_dit

WORLD = 2
# 9 frames at 48 x 48 -> latent 3 x 6 x 6 -> 27 video tokens: 14 + (13 + 1 padding) over 2 ranks.
REQUEST: dict[str, Any] = {
    "model": "tiny-random",
    "height": 48,
    "width": 48,
    "frames": 9,
    "steps": 3,
    "seed": 11,
}


def _requests(image: np.ndarray) -> dict[str, dict[str, Any]]:
    return {
        "t2v_cfg": {
            "prompt": "a red kite over the sea",
            "cfg_scale": 3.0,
            "negative_prompt": "blur",
            **REQUEST,
        },
        "i2v": {"prompt": "the kite turns", "image": image, **REQUEST},
    }


def _worker(rank: int, world: int) -> dict[str, Any]:
    config = serving.ServingConfig.preset("tiny", device="cpu", cpu_threads=1)
    image = (np.random.default_rng(0).random((40, 56, 3)) * 255).astype(np.uint8)
    requests = _requests(image)
    single = {name: serving.generate(config=config, **req) for name, req in requests.items()}

    pipeline = serving.load_pipeline("tiny-random", config=config)
    parallelize_dit(pipeline.transformer)
    parallel = {name: serving.generate(config=config, **req) for name, req in requests.items()}

    results: dict[str, Any] = {
        "cached_pipeline_parallel": is_sequence_parallel(
            serving.load_pipeline("tiny-random", config=config).transformer
        )
    }
    for name in requests:
        a, b = single[name].frames.astype(np.int16), parallel[name].frames.astype(np.int16)
        results[name] = {
            "shape": a.shape,
            "max_diff": int(np.abs(a - b).max()),
            "frames": parallel[name].frames,
            "seed": parallel[name].metadata["seed"],
        }
    return results


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return run_ranks(_worker, WORLD, tmp_path_factory.mktemp("sp_serving"), timeout_s=90)


@pytest.mark.parametrize("name", ["t2v_cfg", "i2v"])
def test_parallel_generate_matches_single_process(results: list[dict[str, Any]], name: str) -> None:
    for per_rank in results:
        assert per_rank["cached_pipeline_parallel"] is True
        assert per_rank[name]["shape"] == (9, 48, 48, 3)
        assert per_rank[name]["seed"] == REQUEST["seed"]
        # uint8 frames: fp32 attention summed in another order may flip a rounding.
        assert per_rank[name]["max_diff"] <= 1, per_rank[name]["max_diff"]
    # Every rank returns the same whole video.
    assert np.array_equal(results[0][name]["frames"], results[1][name]["frames"])
