"""Size and sampling validation: every bad request is rejected before a model loads, with a message
that names the input, the rule and a valid alternative."""

from __future__ import annotations

import inspect
import time
from dataclasses import fields

import pytest

from model.vae_tiling import TilingConfig
from serving import (
    GenerationSettings,
    InvalidRequestError,
    RequestLimits,
    ServingConfig,
    generate,
    validate_size,
)
from serving.limits import MAX_SEED, validate_prompt, validate_sampling


@pytest.mark.parametrize(
    ("height", "width", "frames", "expected"),
    [
        (64, 64, 8, "frames 8 is not of the form 4n+1 (try 5 or 9)"),
        (60, 64, 9, "height 60 is not a multiple of 16 (try 48 or 64)"),
        (64, 100, 9, "width 100 is not a multiple of 16 (try 96 or 112)"),
        (0, 64, 9, "height 0 is below the minimum of 16"),
        (64, 64, 37, "frames 37 exceeds this server's limit of 33"),
        (512, 64, 9, "height 512 exceeds this server's limit of 256"),
        (64, 64, 0, "frames must be a positive integer"),
    ],
)
def test_invalid_sizes_rejected_with_messages(height: int, width: int, frames: int, expected: str) -> None:
    with pytest.raises(InvalidRequestError) as err:
        validate_size(height, width, frames, RequestLimits())
    assert expected in str(err.value)


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(InvalidRequestError) as err:
        validate_size(60, 100, 8, RequestLimits())
    message = str(err.value)
    assert "height 60" in message and "width 100" in message and "frames 8" in message


def test_paper_limits_accept_720p_both_orientations_and_reject_larger_area() -> None:
    paper = ServingConfig.preset("paper").limits
    validate_size(720, 1280, 129, paper)
    validate_size(1280, 720, 129, paper)
    validate_size(544, 960, 129, paper)
    with pytest.raises(InvalidRequestError, match="exceeds this server's limit of 921600 pixels"):
        validate_size(1024, 1024, 129, paper)
    with pytest.raises(InvalidRequestError, match="frames 133 exceeds"):
        validate_size(720, 1280, 133, paper)


def test_sampling_and_prompt_rules() -> None:
    limits = RequestLimits()
    with pytest.raises(InvalidRequestError, match=r"steps must be an integer in \[1, 50\], got 0"):
        validate_sampling(0, 7.0, 6.0, 1.0, limits)
    with pytest.raises(InvalidRequestError, match="cfg_scale must be >= 1"):
        validate_sampling(10, 7.0, 6.0, 0.5, limits)
    with pytest.raises(InvalidRequestError, match="shift must be positive"):
        validate_sampling(10, 0.0, 6.0, 1.0, limits)
    with pytest.raises(InvalidRequestError, match="prompt is empty"):
        validate_prompt("   ", limits)
    with pytest.raises(InvalidRequestError, match="at most 4000"):
        validate_prompt("x" * 4001, limits)
    assert validate_prompt("  a   cat\n", limits) == "a cat"


def test_seed_is_none_or_a_signed_64_bit_integer(tmp_path) -> None:
    checked = GenerationSettings(seed=MAX_SEED).checked(RequestLimits())
    assert checked.seed == 2**63 - 1 and GenerationSettings(seed=None).checked(RequestLimits()).seed is None
    for seed in (2**63, 2**70, -1, 1.0, True):
        with pytest.raises(InvalidRequestError, match=r"seed must be an integer in \[0, 2\^63 - 1\]"):
            GenerationSettings(seed=seed).checked(RequestLimits())  # type: ignore[arg-type]
    config = ServingConfig.preset("tiny", device="cpu", cache_dir=str(tmp_path))
    with pytest.raises(InvalidRequestError, match="seed must be"):  # before any model loads
        generate("a cat", model=str(tmp_path / "missing"), config=config, seed=2**70)


def test_generate_rejects_bad_size_before_loading_any_model(tmp_path) -> None:
    config = ServingConfig.preset("tiny", device="cpu", cache_dir=str(tmp_path))
    start = time.perf_counter()
    # The reference does not exist: if validation did not come first, the error would be about it.
    with pytest.raises(InvalidRequestError, match="not of the form 4n\\+1"):
        generate("a cat", model=str(tmp_path / "missing"), config=config, height=64, width=64, frames=10)
    assert time.perf_counter() - start < 1.0


def test_paper_profile_uses_the_balanced_tiling_and_compiled_blocks() -> None:
    paper, tiny = ServingConfig.preset("paper"), ServingConfig.preset("tiny")
    assert paper.vae_tile_preset == "balanced" and paper.compile_blocks
    assert paper.tiling == TilingConfig(320, 32, 0.2, 0.125, accumulate_fp32=False)
    assert tiny.vae_tile_preset is None and not tiny.compile_blocks
    # Without a preset the three tile fields decide; the tiny values are the official tiling.
    assert tiny.tiling == TilingConfig.preset("official")
    assert tiny.replace(vae_tile_size=128).tiling == TilingConfig(128, 64, 0.25)
    with pytest.raises(ValueError, match="vae_tile_preset 'huge'"):
        ServingConfig.preset("paper", vae_tile_preset="huge")


def test_settings_are_defined_once_and_checking_resolves_them() -> None:
    limits = RequestLimits()
    checked = GenerationSettings(steps=8, cfg_scale=2.0, negative_prompt="  blurry   text ").checked(limits)
    assert checked.shift == 17.0 and checked.negative_prompt == "blurry text"
    assert GenerationSettings(steps=20).checked(limits).shift == 7.0
    assert GenerationSettings(steps=20, shift=3.0).checked(limits).shift == 3.0
    assert GenerationSettings(negative_prompt="blurry").checked(limits).negative_prompt == ""  # CFG off
    with pytest.raises(InvalidRequestError, match="steps must be an integer"):
        GenerationSettings(steps=0).checked(limits)
    # `generate` takes the settings as keywords without listing them a second time.
    names = {f.name for f in fields(GenerationSettings)}
    assert not names & set(inspect.signature(generate).parameters)


def test_unknown_setting_is_rejected_before_loading_any_model(tmp_path) -> None:
    config = ServingConfig.preset("tiny", device="cpu", cache_dir=str(tmp_path))
    with pytest.raises(
        InvalidRequestError, match="unknown generation setting num_videos; the settings are height"
    ):
        generate("a cat", model=str(tmp_path / "missing"), config=config, num_videos=9)
