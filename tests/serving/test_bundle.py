"""Pipeline bundles: our layout, a diffusers pipeline directory, and the errors for bad ones."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from model.bundle import PIPELINE_FILE
from model.checkpoints import load_transformer, load_vae
from model.dit_config import DiTConfig
from model.keymaps import config_to_diffusers
from model.text import TextEncoderConfig
from serving import BundleError, ServingConfig, build_tiny_random, generate, save_pipeline

SIZE = {"height": 32, "width": 32, "frames": 5, "steps": 2, "seed": 9}


def test_diffusers_directory_serves_like_the_same_weights_in_our_bundle(
    tmp_path: Path, tiny_config: ServingConfig
) -> None:
    import diffusers

    torch.manual_seed(0)
    cfg = DiTConfig.preset("tiny", image_condition="token_replace")
    diffusers.HunyuanVideoTransformer3DModel(**config_to_diffusers(cfg)).save_pretrained(
        tmp_path / "hf" / "transformer"
    )
    diffusers.AutoencoderKLHunyuanVideo(
        block_out_channels=(8, 16, 16, 16), layers_per_block=1, norm_num_groups=4
    ).save_pretrained(tmp_path / "hf" / "vae")
    # No pipeline.json: the text encoder is chosen from the DiT's text widths (32/16 -> tiny-random).
    from_diffusers = generate("a boat", model=str(tmp_path / "hf"), config=tiny_config, **SIZE)
    ours = save_pipeline(
        tmp_path / "ours", load_transformer(tmp_path / "hf"), load_vae(tmp_path / "hf"), "tiny-random", fps=8
    )
    from_ours = generate("a boat", model=str(ours), config=tiny_config, **SIZE)
    assert from_diffusers.metadata["model_version"] == "local hf"
    # Same weights, two layouts: the diffusers one keeps q/k/v (and linear1) split, ours fused, so
    # float rounding may move a pixel by one level; nothing more.
    diff = np.abs(from_diffusers.frames.astype(np.int16) - from_ours.frames.astype(np.int16))
    assert diff.max() <= 1 and diff.mean() < 0.01


def test_save_pipeline_checks_text_widths_and_replaces_atomically(tmp_path: Path) -> None:
    transformer, vae, _ = build_tiny_random()
    with pytest.raises(
        BundleError, match=r"reads text of widths \(states, pooled\) = \(32, 16\).*gives \(576, 384\)"
    ):
        save_pipeline(tmp_path / "bad", transformer, vae, "offline-default")
    assert not (tmp_path / "bad").exists()
    official = TextEncoderConfig.preset("official", llm_path="/models/llava", pooled_path="/models/clip")
    with pytest.raises(BundleError, match="gives \\(4096, 768\\)"):
        save_pipeline(tmp_path / "bad", transformer, vae, official)
    first = save_pipeline(tmp_path / "bundle", transformer, vae, "tiny-random", info={"run": "a"})
    save_pipeline(tmp_path / "bundle", transformer, vae, "tiny-random", info={"run": "b"})
    assert json.loads((first / PIPELINE_FILE).read_text())["info"] == {"run": "b"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]  # no staging folders left behind


def test_unreadable_bundles_are_named(tmp_path: Path, tiny_config: ServingConfig) -> None:
    transformer, vae, _ = build_tiny_random()
    bundle = save_pipeline(tmp_path / "bundle", transformer, vae, "tiny-random")
    (bundle / PIPELINE_FILE).write_text(json.dumps({"format": "something-else/9"}))
    with pytest.raises(BundleError, match="format 'something-else/9' is not 'videofoundry-pipeline/1'"):
        generate("x", model=str(bundle), config=tiny_config, **SIZE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="not a pipeline bundle"):
        generate("x", model=str(tmp_path / "empty"), config=tiny_config, **SIZE)
