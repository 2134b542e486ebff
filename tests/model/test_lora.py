"""LoRA adapters (model.lora) and files (model.lora_format) against diffusers 0.42 + PEFT.

Parity: the same random weights in diffusers' HunyuanVideoTransformer3DModel and in our DiT, a
random LoRA on every target group written by `save_lora`, read by diffusers' own
`HunyuanVideoPipeline.lora_state_dict` + `load_lora_adapter` (PEFT) and by our `load_lora`: outputs
agree to relative error < 1e-4 (fp32 CPU; the base parity test's tolerance, the adapters add only
matmuls). Official/musubi files are checked against the weights merged by hand.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from model.checkpoints import load_transformer
from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from model.keymaps import config_to_diffusers
from model.lora import (
    LoRAError,
    LoRASettings,
    adapter_parts,
    inject_lora,
    lora_targets,
    merge_lora,
    remove_lora,
    set_lora_scale,
)
from model.lora_format import LoRAFileError, load_lora, save_lora
from tests.model.builders import dit_inputs, randomize_, rel_err

pytestmark = pytest.mark.usefixtures("one_torch_thread")

diffusers = pytest.importorskip("diffusers")

TOL = 1e-4
CFG = DiTConfig.preset("tiny", depth_double=2, depth_single=2)
ALL = LoRASettings(rank=4, alpha=8.0, targets=("attn", "mlp", "modulation"))


def _randomize_lora(params: list[torch.nn.Parameter], seed: int = 1) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in params:
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)


def _pair(tmp_path: Path, cfg: DiTConfig = CFG):
    torch.manual_seed(0)
    ref = randomize_(diffusers.HunyuanVideoTransformer3DModel(**config_to_diffusers(cfg))).eval()
    ref.save_pretrained(tmp_path / "base")
    return ref, load_transformer(tmp_path / "base")


def _ref_out(ref, inputs) -> torch.Tensor:
    x, t, states, mask, pooled, guidance = inputs
    return ref(x, t, states, mask, pooled, guidance, return_dict=False)[0]


def test_targets_cover_every_projection_in_diffusers_names() -> None:
    targets = {t.diffusers: t for t in lora_targets(HunyuanDiT(CFG))}
    d, mlp = CFG.hidden_size, CFG.mlp_hidden
    assert targets["transformer_blocks.1.attn.to_k"].module == "double_blocks.1.img_attn_qkv"
    assert (
        targets["transformer_blocks.1.attn.to_k"].offset,
        targets["transformer_blocks.1.attn.to_k"].size,
    ) == (d, d)
    assert targets["transformer_blocks.0.attn.add_v_proj"].offset == 2 * d
    assert targets["single_transformer_blocks.1.proj_mlp"].module == "single_blocks.1.linear1"
    assert (
        targets["single_transformer_blocks.1.proj_mlp"].offset,
        targets["single_transformer_blocks.1.proj_mlp"].size,
    ) == (3 * d, mlp)
    assert targets["single_transformer_blocks.0.proj_out"].group == "attn"
    assert targets["transformer_blocks.0.norm1_context.linear"].group == "modulation"
    assert targets["transformer_blocks.0.ff_context.net.2"].group == "mlp"
    # 8 attn + 4 mlp + 2 modulation per double block, 4 attn + 1 mlp + 1 modulation per single block
    assert len(targets) == 2 * 14 + 2 * 6


def test_saved_lora_loads_in_diffusers_with_the_same_output(tmp_path: Path) -> None:
    ref, ours = _pair(tmp_path)
    params = inject_lora(ours, ALL)
    _randomize_lora(params)
    path = save_lora(ours, tmp_path / "style.safetensors", ALL, metadata={"base_model": "test"})
    keys = load_file(str(path))
    assert "transformer.transformer_blocks.0.attn.to_q.lora_A.weight" in keys
    assert "transformer.single_transformer_blocks.1.proj_mlp.lora_B.weight" in keys
    assert "transformer.single_transformer_blocks.0.attn.to_v.lora_A.weight" in keys
    assert len(keys) == 2 * 40

    state = diffusers.HunyuanVideoPipeline.lora_state_dict(str(path))
    ref.load_lora_adapter(state, prefix="transformer", adapter_name="style")
    inputs = dit_inputs(CFG, grid=(3, 6, 10), text_len=7)
    with torch.no_grad():
        expected = _ref_out(ref, inputs)
        ours_trained = ours(*inputs)
        fresh = load_transformer(tmp_path / "base")
        base = fresh(*inputs)
        info = load_lora(fresh, path)
        served = fresh(*inputs)
    assert rel_err(base, expected) > 0.05  # the LoRA matters
    assert rel_err(ours_trained, expected) < TOL
    assert rel_err(served, expected) < TOL
    assert info.layout == "diffusers" and info.ranks == (4,) and info.metadata["base_model"] == "test"


def test_scale_zero_is_exactly_the_base_and_merge_matches_adapter_mode(tmp_path: Path) -> None:
    _, ours = _pair(tmp_path)
    inputs = dit_inputs(CFG)
    with torch.no_grad():
        base = ours(*inputs)
        _randomize_lora(inject_lora(ours, ALL))
        set_lora_scale(ours, "default", 0.0)
        assert torch.equal(ours(*inputs), base)
        set_lora_scale(ours, "default", 0.5)
        adapted = ours(*inputs)
        merge_lora(ours)
        assert not any(name.endswith(".lora") for name, _ in ours.named_modules())
        assert rel_err(ours(*inputs), adapted) < TOL
        assert rel_err(adapted, base) > 0.01


def _musubi_file(path: Path, model: HunyuanDiT, rank: int, alpha: float) -> dict[str, torch.Tensor]:
    """A synthetic official/musubi LoRA over fused linears; returns name -> merged delta weight."""
    gen = torch.Generator().manual_seed(5)
    tensors: dict[str, torch.Tensor] = {}
    deltas: dict[str, torch.Tensor] = {}
    for module in ("double_blocks.0.img_attn_qkv", "double_blocks.1.txt_mlp.fc1", "double_blocks.0.img_mod.linear",
                   "single_blocks.0.linear1", "single_blocks.1.linear2"):  # fmt: skip
        linear = model.get_submodule(module)
        down = torch.randn(rank, linear.in_features, generator=gen) * 0.1
        up = torch.randn(linear.out_features, rank, generator=gen) * 0.1
        name = "lora_unet_" + module.replace(".", "_")
        tensors |= {
            f"{name}.lora_down.weight": down,
            f"{name}.lora_up.weight": up,
            f"{name}.alpha": torch.tensor(alpha),
        }
        deltas[module] = alpha / rank * up @ down
    save_file(tensors, str(path))
    return deltas


def test_musubi_layout_imports_as_the_hand_merged_weights(tmp_path: Path) -> None:
    ref, ours = _pair(tmp_path)
    deltas = _musubi_file(tmp_path / "musubi.safetensors", ours, rank=3, alpha=1.5)
    merged = load_transformer(tmp_path / "base")
    with torch.no_grad():
        for module, delta in deltas.items():
            merged.get_submodule(module).weight += delta
    inputs = dit_inputs(CFG, seed=2)
    info = load_lora(ours, tmp_path / "musubi.safetensors", adapter="m")
    assert info.layout == "musubi" and info.parts == 5
    with torch.no_grad():
        expected = merged(*inputs)
        assert rel_err(ours(*inputs), expected) < TOL
        # Re-exported in the diffusers layout, the imported LoRA gives diffusers the same output.
        save_lora(ours, tmp_path / "converted.safetensors", LoRASettings(rank=3), adapter="m")
        ref.load_lora_adapter(load_file(str(tmp_path / "converted.safetensors")), prefix="transformer")
        assert rel_err(_ref_out(ref, inputs), expected) < TOL


def _one_projection(path: Path, block: int, a: tuple[int, int], b: tuple[int, int]) -> Path:
    """A diffusers-layout file with one to_q LoRA of the given A and B shapes."""
    key = f"transformer.transformer_blocks.{block}.attn.to_q"
    save_file({f"{key}.lora_A.weight": torch.zeros(a), f"{key}.lora_B.weight": torch.zeros(b)}, str(path))
    return path


@pytest.mark.parametrize(
    ("block", "a", "b", "expect_rank", "message"),
    [
        (7, (4, 64), (64, 4), None, r"LoRA for another architecture.*transformer_blocks\.7"),
        (0, (4, 3072), (3072, 4), None, r"LoRA for another architecture: attn.to_q is 3072x3072"),
        (0, (4, 64), (64, 8), None, r"rank mismatch at attn.to_q"),
        (0, (4, 64), (64, 4), 8, r"rank mismatch at attn.to_q: rank 4, expected 8"),
    ],
    ids=["depth", "width", "ranks", "expected-rank"],
)
def test_lora_files_that_do_not_fit_name_the_file(tmp_path, block, a, b, expect_rank, message) -> None:  # type: ignore[no-untyped-def]
    path = _one_projection(tmp_path / "lora.safetensors", block, a, b)
    with pytest.raises(LoRAFileError, match=rf"lora.safetensors: {message}"):
        load_lora(HunyuanDiT(CFG), path, expect_rank=expect_rank)


def test_bad_lora_files_and_settings(tmp_path: Path) -> None:
    model = HunyuanDiT(CFG)
    (tmp_path / "junk.safetensors").write_bytes(b"not a file")
    with pytest.raises(LoRAFileError, match="junk.safetensors: not a readable"):
        load_lora(model, tmp_path / "junk.safetensors")
    with pytest.raises(LoRAError, match="targets"):
        LoRASettings(targets=("attn", "conv"))
    remove_lora(model)
    assert not any(n.endswith(".lora") for n, _ in model.named_modules())
    with pytest.raises(LoRAError, match="no LoRA adapter"):
        adapter_parts(model)
