"""Export to diffusers' layout, checked against diffusers itself: `from_pretrained` loads what we
write and gives our outputs (relative error < 1e-4, fp32 CPU), sharded or not; the folder is still
a bundle serving reads; models diffusers cannot represent are refused with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from model.bundle import save_pipeline
from model.checkpoints import load_transformer, load_vae, read_safetensors, save_model
from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from model.vae import CausalVAE3D, VAEConfig
from tests.model.builders import dit_inputs, randomize_, rel_err

diffusers = pytest.importorskip("diffusers")

TOL = 1e-4


def _models(image_condition: str | None = None) -> tuple[HunyuanDiT, CausalVAE3D]:
    torch.manual_seed(0)
    dit = randomize_(HunyuanDiT(DiTConfig.preset("tiny", image_condition=image_condition))).eval()
    vae = randomize_(CausalVAE3D(VAEConfig.preset("tiny")), std=0.1).eval()
    return dit, vae


@pytest.mark.parametrize("shard_bytes", [5 * 2**30, 64 * 1024], ids=["one-file", "sharded"])
def test_diffusers_loads_the_export_and_matches_our_outputs(tmp_path: Path, shard_bytes: int) -> None:
    dit, vae = _models()
    out = save_pipeline(
        tmp_path / "export", dit, vae, "tiny-random", defaults={"shift": 9.0}, layout="diffusers",
        max_shard_bytes=shard_bytes,
    )  # fmt: skip
    shards = sorted(p.name for p in (out / "transformer").glob("diffusion_pytorch_model*.safetensors"))
    if shard_bytes < 2**20:
        assert (
            len(shards) > 1
            and (out / "transformer" / "diffusion_pytorch_model.safetensors.index.json").exists()
        )
    else:
        assert shards == ["diffusion_pytorch_model.safetensors"]
    ref_dit = diffusers.HunyuanVideoTransformer3DModel.from_pretrained(out / "transformer").eval()
    ref_vae = diffusers.AutoencoderKLHunyuanVideo.from_pretrained(out / "vae").eval()
    ref_vae.use_framewise_encoding = ref_vae.use_framewise_decoding = False
    scheduler = json.loads((out / "scheduler" / "scheduler_config.json").read_text())
    assert scheduler["_class_name"] == "FlowMatchEulerDiscreteScheduler" and scheduler["shift"] == 9.0

    x, t, states, mask, pooled, guidance = dit_inputs(dit.config, batch=2, grid=(3, 6, 10), text_len=7)
    with torch.no_grad():
        ours = dit(x, t, states, mask, pooled, guidance)
        theirs = ref_dit(x, t, states, mask, pooled, guidance, return_dict=False)[0]
        assert rel_err(theirs, ours) < TOL
        video = torch.rand(1, 3, 9, 32, 32) * 2 - 1
        z = vae.encode(video).mode()
        assert rel_err(ref_vae.encode(video).latent_dist.mode(), z) < TOL
        assert rel_err(ref_vae.decode(z, return_dict=False)[0], vae.decode(z)) < TOL
    # Our loaders read the export back exactly, and it is a bundle (pipeline.json kept).
    assert torch.equal(load_transformer(out)(x, t, states, mask, pooled, guidance), ours)
    assert json.loads((out / "pipeline.json").read_text())["text_encoder"] == {"preset": "tiny-random"}


def test_sharded_save_of_our_format_round_trips_and_replaces_the_other_layout(tmp_path: Path) -> None:
    dit, _ = _models()
    save_model(dit, tmp_path / "dit")
    save_model(dit, tmp_path / "dit", max_shard_bytes=100_000)
    names = sorted(p.name for p in (tmp_path / "dit").iterdir())
    assert "model.safetensors" not in names and "model.safetensors.index.json" in names
    index = json.loads((tmp_path / "dit" / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(dit.state_dict())
    assert index["metadata"]["total_size"] == sum(t.numel() * 4 for t in dit.state_dict().values())
    loaded = load_transformer(tmp_path / "dit")
    for key, tensor in dit.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], tensor), key
    save_model(dit, tmp_path / "dit")  # back to one file: the shards and index go
    assert sorted(p.name for p in (tmp_path / "dit").iterdir()) == ["config.json", "model.safetensors"]
    assert set(read_safetensors(tmp_path / "dit", "model")) == set(dit.state_dict())


def test_a_missing_shard_is_named(tmp_path: Path) -> None:
    _, vae = _models()
    save_model(vae, tmp_path / "vae", max_shard_bytes=20_000)
    victim = sorted((tmp_path / "vae").glob("model-*.safetensors"))[1]
    victim.unlink()
    with pytest.raises(ValueError, match=victim.name):
        load_vae(tmp_path / "vae")


def test_a_per_frame_norm_vae_is_refused_with_the_reason(tmp_path: Path) -> None:
    dit, _ = _models()
    vae = CausalVAE3D(VAEConfig.preset("tiny", norm_stats="frame"))
    with pytest.raises(ValueError, match="norm_stats='frame' has no diffusers equivalent"):
        save_pipeline(tmp_path / "out", dit, vae, "tiny-random", layout="diffusers")
    assert not (tmp_path / "out").exists()


def test_the_demo_vae_4x_space_without_down_resnets_loads_in_diffusers(tmp_path: Path) -> None:
    """The demo profile's VAE (3 blocks: 4x space, layers_per_block=0) is one diffusers builds too."""
    dit, _ = _models()
    torch.manual_seed(1)
    vae = randomize_(CausalVAE3D(VAEConfig.preset("demo")), std=0.1).eval()
    out = save_pipeline(tmp_path / "export", dit, vae, "tiny-random", layout="diffusers")
    ref_vae = diffusers.AutoencoderKLHunyuanVideo.from_pretrained(out / "vae").eval()
    ref_vae.use_framewise_encoding = ref_vae.use_framewise_decoding = False
    assert ref_vae.config.spatial_compression_ratio == 4
    video = torch.rand(1, 3, 9, 32, 32) * 2 - 1
    with torch.no_grad():
        z = vae.encode(video).mode()
        assert z.shape == (1, 16, 3, 8, 8)
        assert rel_err(ref_vae.encode(video).latent_dist.mode(), z) < TOL
        assert rel_err(ref_vae.decode(z, return_dict=False)[0], vae.decode(z)) < TOL
