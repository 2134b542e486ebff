"""`generate` on the built-in tiny-random model: determinism, seeds, CFG, progress, prompts, errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from serving import InvalidRequestError, ModelReferenceError, ServingConfig, generate, load_pipeline

SIZE = {"height": 32, "width": 48, "frames": 5, "steps": 3}


def test_same_seed_same_video_and_other_seed_differs(tiny_config: ServingConfig) -> None:
    first = generate("a red kite over the sea", model="tiny-random", config=tiny_config, seed=7, **SIZE)
    again = generate("a red kite over the sea", model="tiny-random", config=tiny_config, seed=7, **SIZE)
    other = generate("a red kite over the sea", model="tiny-random", config=tiny_config, seed=8, **SIZE)
    assert first.frames.shape == (5, 32, 48, 3) and first.frames.dtype == np.uint8
    assert np.array_equal(first.frames, again.frames)
    assert np.abs(first.frames.astype(int) - other.frames.astype(int)).mean() > 5.0
    assert (
        first.metadata["seed"] == 7 and first.metadata["model_version"] == "tiny-random (seed 0, untrained)"
    )


def test_same_seed_after_reloading_the_model_gives_same_video(tiny_config: ServingConfig) -> None:
    """The tiny-random weights come from a fixed seed, so a fresh load reproduces the video."""
    first = generate("waves", model="tiny-random", config=tiny_config, seed=3, **SIZE)
    reloaded = dataclasses.replace(tiny_config, vae_tile_overlap=0.25 + 1e-9)  # new config -> new load
    second = generate("waves", model="tiny-random", config=reloaded, seed=3, **SIZE)
    assert np.array_equal(first.frames, second.frames)


def test_prompt_guidance_and_cfg_change_the_video(tiny_config: ServingConfig) -> None:
    base = generate("a cat", model="tiny-random", config=tiny_config, seed=1, **SIZE)
    prompt = generate("a dog in snow", model="tiny-random", config=tiny_config, seed=1, **SIZE)
    guided = generate("a cat", model="tiny-random", config=tiny_config, seed=1, guidance=1.0, **SIZE)
    cfg = generate(
        "a cat",
        model="tiny-random",
        config=tiny_config,
        seed=1,
        cfg_scale=5.0,
        negative_prompt="blurry",
        **SIZE,
    )
    for other in (prompt, guided, cfg):
        assert not np.array_equal(base.frames, other.frames)
    assert cfg.metadata["cfg_scale"] == 5.0 and cfg.metadata["negative_prompt"] == "blurry"
    # Without real CFG the negative prompt is not used (and not recorded as used).
    plain = generate(
        "a cat", model="tiny-random", config=tiny_config, seed=1, negative_prompt="blurry", **SIZE
    )
    assert np.array_equal(base.frames, plain.frames) and plain.metadata["negative_prompt"] == ""


def test_progress_called_once_per_step_and_default_shift(tiny_config: ServingConfig) -> None:
    calls: list[tuple[int, int]] = []
    video = generate(
        "rain",
        model="tiny-random",
        config=tiny_config,
        seed=0,
        progress=lambda i, n: calls.append((i, n)),
        **SIZE,
    )
    assert calls == [(1, 3), (2, 3), (3, 3)]
    assert video.metadata["shift"] == 17.0  # fewer than 20 steps -> the released 17
    assert video.fps == 8.0 and video.duration == pytest.approx(5 / 8)


def test_long_prompt_truncated_with_notice(tiny_config: ServingConfig) -> None:
    words = [f"word{i}" for i in range(40)]
    video = generate(" ".join(words), model="tiny-random", config=tiny_config, seed=0, **SIZE)
    assert video.metadata["prompt_truncated"] is True
    assert video.metadata["prompt"] == " ".join(words[:15])  # tiny-random reads 16 tokens: start + 15 words
    assert (
        "41 tokens long" in video.metadata["prompt_notice"] and "reads 16" in video.metadata["prompt_notice"]
    )
    pipeline = load_pipeline("tiny-random", config=tiny_config)
    assert pipeline.fit_prompt("short prompt").truncated is False


def test_tiled_decode_matches_untiled_closely(tiny_config: ServingConfig) -> None:
    size = {"height": 64, "width": 96, "frames": 9, "steps": 2}
    whole = generate("fog", model="tiny-random", config=tiny_config, seed=2, **size)
    tiled_config = dataclasses.replace(tiny_config, vae_tiling="always", vae_tile_size=64, vae_tile_frames=8)
    tiled = generate("fog", model="tiny-random", config=tiled_config, seed=2, **size)
    diff = np.abs(whole.frames.astype(int) - tiled.frames.astype(int))
    assert tiled.frames.shape == whole.frames.shape
    assert tiled.metadata["vae_tiled"] is True and whole.metadata["vae_tiled"] is False
    # Same latents, decoded in 2x2x2 blended tiles: close, not equal (the untrained VAE's clip-wide
    # GroupNorm statistics differ per tile).
    assert diff.mean() < 30.0


def test_errors_name_the_input(tiny_config: ServingConfig, tmp_path) -> None:
    with pytest.raises(ModelReferenceError, match="neither 'tiny-random'"):
        generate("a cat", model=str(tmp_path / "nope"), config=tiny_config, **SIZE)
    with pytest.raises(InvalidRequestError, match=r"image .*missing.png does not exist"):
        generate("a cat", tmp_path / "missing.png", model="tiny-random", config=tiny_config, **SIZE)
    with pytest.raises(InvalidRequestError, match="steps must be an integer"):
        generate("a cat", model="tiny-random", config=tiny_config, height=32, width=32, frames=5, steps=0)


def test_diffusers_argument_names_give_the_same_video(tiny_config: ServingConfig) -> None:
    """A diffusers user's first try (num_frames, num_inference_steps, guidance_scale, generator) works
    and means what our names mean; a generator seeded alike gives the same video."""
    import torch

    ours = generate(
        "a red kite", model="tiny-random", config=tiny_config, height=32, width=48, frames=5, steps=3,
        guidance=4.0, seed=11,
    )  # fmt: skip
    theirs = generate(
        "a red kite", model="tiny-random", config=tiny_config, height=32, width=48, num_frames=5,
        num_inference_steps=3, guidance_scale=4.0, seed=11,
    )  # fmt: skip
    assert np.array_equal(ours.frames, theirs.frames)
    with_gen = [
        generate(
            "a red kite",
            model="tiny-random",
            config=tiny_config,
            height=32,
            width=48,
            num_frames=5,
            num_inference_steps=3,
            generator=torch.Generator().manual_seed(5),
        )  # fmt: skip
        for _ in range(2)
    ]
    assert np.array_equal(with_gen[0].frames, with_gen[1].frames)
    assert isinstance(with_gen[0].metadata["seed"], int)
    with pytest.raises(InvalidRequestError, match="num_frames and frames name the same setting"):
        generate("x", model="tiny-random", config=tiny_config, frames=5, num_frames=5)
    with pytest.raises(InvalidRequestError, match="generator must be a torch.Generator, got int"):
        generate("x", model="tiny-random", config=tiny_config, generator=3)
