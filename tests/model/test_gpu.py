"""GPU checks (skipped without CUDA): bf16 agreement with diffusers and with our own fp32 path."""

from __future__ import annotations

import pytest
import torch

from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from model.keymaps import config_to_diffusers, diffusers_to_official
from model.vae import CausalVAE3D, VAEConfig
from tests.model.builders import dit_inputs, rel_err

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_dit_bf16_on_gpu_matches_diffusers_with_the_same_weights() -> None:
    diffusers = pytest.importorskip("diffusers")
    cfg = DiTConfig.preset("small")
    torch.manual_seed(0)
    ref = diffusers.HunyuanVideoTransformer3DModel(**config_to_diffusers(cfg)).cuda().bfloat16().eval()
    ours = HunyuanDiT(cfg).cuda().bfloat16().eval()
    ours.load_state_dict(diffusers_to_official(ref.state_dict(), cfg))
    inputs = [t.cuda() for t in dit_inputs(cfg, grid=(5, 16, 24), text_len=40)]
    inputs = [t.bfloat16() if t.is_floating_point() and t.ndim > 1 else t for t in inputs]
    with torch.no_grad():
        expected = ref(*inputs, return_dict=False)[0]
        got = ours(*inputs)
    assert rel_err(got.float(), expected.float()) < 2e-2


def test_vae_bf16_lean_decode_on_gpu_matches_fp32() -> None:
    vae = CausalVAE3D(VAEConfig.preset("small")).cuda().eval()
    z = torch.randn(1, 16, 5, 16, 16, device="cuda")
    with torch.no_grad():
        full = vae.decode(z)
        half = vae.bfloat16().decode(z.bfloat16())
    assert rel_err(half.float(), full) < 3e-2
