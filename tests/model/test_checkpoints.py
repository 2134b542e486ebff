"""Checkpoint loading: config inference, our format, sharded diffusers files, error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from model.checkpoints import (
    CheckpointError,
    infer_dit_config,
    infer_vae_config,
    load_transformer,
    load_vae,
    save_model,
)
from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from model.keymaps import official_to_diffusers
from model.vae import CausalVAE3D, VAEConfig
from tests.model.builders import dit_inputs, randomize_


def test_official_13b_config_is_inferred_from_shapes() -> None:
    with torch.device("meta"):
        model = HunyuanDiT(DiTConfig.preset("hunyuan-13b"))
    assert infer_dit_config(model.state_dict()) == DiTConfig.preset("hunyuan-13b")
    with torch.device("meta"):
        vae = CausalVAE3D(VAEConfig.preset("884-16c-hy"))
    assert infer_vae_config(vae.state_dict()) == VAEConfig.preset("884-16c-hy")


def test_our_format_round_trip_keeps_config_and_outputs(tmp_path: Path) -> None:
    cfg = DiTConfig.preset("tiny", image_condition="token_replace")
    model = randomize_(HunyuanDiT(cfg)).eval()
    save_model(model, tmp_path / "dit")
    assert sorted(p.name for p in (tmp_path / "dit").iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_transformer(tmp_path / "dit", dtype=torch.float32)
    assert loaded.config == cfg
    inputs = dit_inputs(cfg)
    with torch.no_grad():
        assert torch.equal(loaded(*inputs), model(*inputs))
    vae = randomize_(CausalVAE3D(VAEConfig.preset("tiny", norm_stats="frame")))
    save_model(vae, tmp_path / "vae")
    assert load_vae(tmp_path / "vae").config.norm_stats == "frame"


def test_sharded_diffusers_directory_and_pipeline_root(tmp_path: Path) -> None:
    cfg = DiTConfig.preset("tiny")
    model = randomize_(HunyuanDiT(cfg)).eval()
    weights = official_to_diffusers(model.state_dict(), cfg)
    keys = sorted(weights)
    root = tmp_path / "pipeline" / "transformer"
    root.mkdir(parents=True)
    halves = {"a.safetensors": keys[: len(keys) // 2], "b.safetensors": keys[len(keys) // 2 :]}
    for name, part in halves.items():
        save_file({k: weights[k] for k in part}, str(root / name))
    index = {"weight_map": {k: name for name, part in halves.items() for k in part}}
    (root / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    from model.keymaps import config_to_diffusers

    (root / "config.json").write_text(
        json.dumps({"_class_name": "HunyuanVideoTransformer3DModel", **config_to_diffusers(cfg)})
    )
    loaded = load_transformer(tmp_path / "pipeline")
    inputs = dit_inputs(cfg)
    with torch.no_grad():
        assert torch.allclose(loaded(*inputs), model(*inputs), atol=1e-6)


def test_errors_name_the_path_and_the_problem(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such file"):
        load_transformer(tmp_path / "missing")
    save_model(randomize_(CausalVAE3D(VAEConfig.preset("tiny"))), tmp_path / "vae")
    with pytest.raises(CheckpointError, match="not a DiT"):
        load_transformer(tmp_path / "vae")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    with pytest.raises(CheckpointError, match="neither ours nor"):
        load_vae(tmp_path / "other")
    torch.save({"module": {"img_in.proj.weight": torch.zeros(64, 16, 1, 2, 2)}}, tmp_path / "broken.pt")
    with pytest.raises(CheckpointError, match="lack"):
        load_transformer(tmp_path / "broken.pt")
    small = HunyuanDiT(DiTConfig.preset("tiny")).state_dict()
    torch.save({"module": small}, tmp_path / "tiny.pt")
    with pytest.raises(CheckpointError, match="do not fit"):
        load_transformer(tmp_path / "tiny.pt", config=DiTConfig.preset("tiny", depth_single=2))
