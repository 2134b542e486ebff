"""Parity with diffusers 0.42 (CPU, fp32, random weights) through our checkpoint loaders.

Weights are built in diffusers, saved with `save_pretrained`, loaded with `load_transformer` /
`load_vae`, and outputs compared (relative error < 1e-4) on odd token grids, padded text and batch 2.
The same weights are then written in the official layout (`.pt` with a `module` key, and
safetensors) and loaded again.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.checkpoints import load_transformer, load_vae, save_model
from model.dit_config import DiTConfig
from model.keymaps import config_to_diffusers, diffusers_to_official, official_to_diffusers
from model.vae import VAEConfig
from model.vae_tiling import TilingConfig
from tests.model.builders import dit_inputs, randomize_, rel_err

diffusers = pytest.importorskip("diffusers")

TOL = 1e-4
CASES = {
    "t2v": DiTConfig.preset("tiny", depth_double=2, depth_single=2, depth_refiner=2),
    "token_replace": DiTConfig.preset("tiny", image_condition="token_replace"),
    "latent_concat": DiTConfig.preset("tiny", image_condition="latent_concat", in_channels=33),
    "no_guidance": DiTConfig.preset("tiny", guidance_embed=False),
}


def _diffusers_dit(cfg: DiTConfig, directory: Path):
    torch.manual_seed(0)
    ref = diffusers.HunyuanVideoTransformer3DModel(**config_to_diffusers(cfg))
    randomize_(ref).eval()
    ref.save_pretrained(directory)
    return ref


def _run_ref(ref, x, t, states, mask, pooled, guidance, clean=None):
    if ref.config.image_condition_type == "token_replace" and clean is not None:
        x = torch.cat([clean, x[:, :, 1:]], dim=2)
    return ref(
        x, t, states, mask, pooled, guidance if ref.config.guidance_embeds else None, return_dict=False
    )[0]


@pytest.mark.parametrize("case", sorted(CASES))
def test_transformer_matches_diffusers(case: str, tmp_path: Path) -> None:
    cfg = CASES[case]
    ref = _diffusers_dit(cfg, tmp_path / "diffusers")
    ours = load_transformer(tmp_path / "diffusers")
    assert ours.config == cfg
    x, t, states, mask, pooled, guidance = dit_inputs(cfg, batch=2, grid=(3, 6, 10), text_len=7)
    clean = torch.randn(2, 16, 1, 6, 10) if case == "token_replace" else None
    g = guidance if cfg.guidance_embed else None
    with torch.no_grad():
        expected = _run_ref(ref, x, t, states, mask, pooled, guidance, clean)
        got = ours(x, t, states, mask, pooled, g, first_frame_clean=clean)
        assert rel_err(got, expected) < TOL

        # The official layout of the same weights: .pt with a `module` key, and safetensors.
        official = ours.state_dict()
        torch.save({"module": official}, tmp_path / "mp_rank_00_model_states.pt")
        from_pt = load_transformer(tmp_path / "mp_rank_00_model_states.pt", config=cfg)
        assert rel_err(from_pt(x, t, states, mask, pooled, g, first_frame_clean=clean), expected) < TOL

        # Converting back gives diffusers' exact tensors (fused QKV split, adaLN halves swapped back).
        back = official_to_diffusers(official, cfg)
        for key, tensor in ref.state_dict().items():
            assert torch.equal(back[key], tensor), key


def test_transformer_parity_on_a_second_odd_shape(tmp_path: Path) -> None:
    cfg = CASES["t2v"]
    ref = _diffusers_dit(cfg, tmp_path / "d")
    ours = load_transformer(tmp_path / "d")
    x, t, states, mask, pooled, guidance = dit_inputs(cfg, batch=2, grid=(5, 2, 14), text_len=11, seed=3)
    mask[0, 9:] = False
    with torch.no_grad():
        assert (
            rel_err(
                ours(x, t, states, mask, pooled, guidance),
                _run_ref(ref, x, t, states, mask, pooled, guidance),
            )
            < TOL
        )


def test_official_safetensors_and_our_format_round_trip(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    cfg = CASES["t2v"]
    _diffusers_dit(cfg, tmp_path / "d")
    ours = load_transformer(tmp_path / "d")
    save_file(ours.state_dict(), str(tmp_path / "official.safetensors"))
    save_model(ours, tmp_path / "ours")
    inputs = dit_inputs(cfg)
    with torch.no_grad():
        expected = ours(*inputs)
        for loaded in (
            load_transformer(tmp_path / "official.safetensors", config=cfg),
            load_transformer(tmp_path / "ours"),
        ):
            assert torch.equal(loaded(*inputs), expected)


def _diffusers_vae(cfg: VAEConfig, directory: Path):
    torch.manual_seed(0)
    ref = diffusers.AutoencoderKLHunyuanVideo(
        block_out_channels=cfg.block_out_channels,
        layers_per_block=cfg.layers_per_block,
        norm_num_groups=cfg.norm_groups,
        latent_channels=cfg.latent_channels,
    )
    randomize_(ref, std=0.1).eval()
    # Whole-clip reference: diffusers otherwise splits > 16 frames into temporal tiles.
    ref.use_framewise_encoding = ref.use_framewise_decoding = False
    ref.save_pretrained(directory)
    return ref


def test_vae_matches_diffusers_and_loads_from_the_official_layout(tmp_path: Path) -> None:
    cfg = VAEConfig.preset("tiny")
    ref = _diffusers_vae(cfg, tmp_path / "vae")
    ours = load_vae(tmp_path / "vae")
    assert ours.config == cfg
    video = torch.rand(2, 3, 9, 24, 40, generator=torch.Generator().manual_seed(0)) * 2 - 1
    z = torch.randn(2, 16, 3, 5, 7, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        posterior = ref.encode(video).latent_dist
        expected_dec = ref.decode(z).sample
        for model in (ours, None):
            if model is None:  # the official layout: a .pt whose keys carry a "vae." prefix
                torch.save(
                    {"state_dict": {f"vae.{k}": v for k, v in ours.state_dict().items()}}, tmp_path / "vae.pt"
                )
                model = load_vae(tmp_path / "vae.pt", config=cfg)
            got = model.encode(video)
            assert rel_err(got.mean, posterior.mean) < TOL
            assert rel_err(got.std, posterior.std) < TOL
            assert rel_err(model.decode(z), expected_dec) < TOL


def test_tiled_decode_is_no_further_from_untiled_than_diffusers_tiling(tmp_path: Path) -> None:
    """Untrained tiny networks make any tiling differ; ours must not be worse than diffusers' at equal tiles."""
    cfg = VAEConfig.preset("tiny")
    torch.manual_seed(0)
    ref = diffusers.AutoencoderKLHunyuanVideo(
        block_out_channels=cfg.block_out_channels,
        layers_per_block=cfg.layers_per_block,
        norm_num_groups=cfg.norm_groups,
    ).eval()
    ref.save_pretrained(tmp_path / "vae")
    ours = load_vae(tmp_path / "vae")
    coarse = torch.randn(1, 16, 2, 2, 3, generator=torch.Generator().manual_seed(2))
    z = torch.nn.functional.interpolate(coarse, size=(2, 6, 9), mode="trilinear")
    ref.use_framewise_decoding = False
    ref.enable_tiling(32, 32, None, 24, 24, None)
    with torch.no_grad():
        full = ours.decode(z)
        ref_err = rel_err(ref.decode(z).sample, full)
        our_err = rel_err(ours.tiled_decode(z, TilingConfig(tile_size=32, overlap=0.25)), full)
    assert our_err <= 1.05 * ref_err, (our_err, ref_err)


def test_transformer_gradients_match_diffusers(tmp_path: Path) -> None:
    cfg = CASES["token_replace"]
    ref = _diffusers_dit(cfg, tmp_path / "d")
    ours = load_transformer(tmp_path / "d")
    x, t, states, mask, pooled, guidance = dit_inputs(cfg)
    clean = torch.randn(2, 16, 1, 6, 10)
    _run_ref(ref, x, t, states, mask, pooled, guidance, clean).pow(2).mean().backward()
    ours(x, t, states, mask, pooled, guidance, first_frame_clean=clean).pow(2).mean().backward()
    ref_grads = diffusers_to_official({k: p.grad for k, p in ref.named_parameters()}, cfg)
    for name, param in ours.named_parameters():
        assert rel_err(param.grad, ref_grads[name]) < TOL, name
