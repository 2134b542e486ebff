"""LoRA training on CPU: a tiny adapter trained on a caption folder lowers the flow loss on a fixed
probe (same t and noise before and after) and changes the model's output; the base stays frozen."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.dit import HunyuanDiT
from model.dit_config import DiTConfig
from model.lora import LoRASettings, adapter_parts
from model.text import build_text_encoder
from model.vae import CausalVAE3D, VAEConfig
from tests.training.dit.lora_data_builders import make_lora_folder
from training.dit.latent_cache import LatentBatch, load_batch
from training.dit.lora_data import LoRADataError, read_lora_folder
from training.dit.lora_trainer import LoRATrainConfig, LoRATrainer, LoRATrainError
from training.dit.loss import flow_matching_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _models(image_condition: str | None = "token_replace"):
    torch.manual_seed(0)
    dit = HunyuanDiT(DiTConfig.preset("tiny", image_condition=image_condition))
    vae = CausalVAE3D(VAEConfig.preset("tiny", scaling_factor=8.0)).eval()
    return dit, vae, build_text_encoder("tiny-random")


def _probe(trainer: LoRATrainer, batch: LatentBatch, i2v: bool) -> float:
    """Mean flow loss over 8 fixed (t, noise) draws."""
    with torch.no_grad():
        return sum(
            float(flow_matching_loss(trainer.model, batch, trainer.config, torch.Generator().manual_seed(s),
                                     torch.device("cpu"), True, first_frame_clean=i2v).loss)
            for s in range(8)
        ) / 8  # fmt: skip


@pytest.mark.parametrize(
    ("i2v", "lowmem"),
    [(False, False), (True, False), (True, True)],
    ids=["t2v", "i2v", "i2v-fp8-swap-chunked"],
)
def test_lora_training_lowers_the_loss_and_changes_the_output(
    tmp_path: Path, i2v: bool, lowmem: bool
) -> None:
    data = read_lora_folder(make_lora_folder(tmp_path / "data"), videos_only=i2v)
    assert (data.videos, data.images) == ((2, 0) if i2v else (2, 1))
    dit, vae, text = _models()
    base_state = {k: v.clone() for k, v in dit.state_dict().items()}
    config = LoRATrainConfig(
        lora=LoRASettings(rank=4, alpha=4.0), steps=30, lr=1e-2, resolution=32, frame_buckets=(5,),
        sample_posterior=False, i2v=i2v, fp8_base=lowmem, block_swap=-1 if lowmem else 0, offload_activations=lowmem,
        ffn_chunk_tokens=3 if lowmem else None,
    )  # fmt: skip
    trainer = LoRATrainer(dit, vae, text, config, tmp_path / "cache")
    sampler = trainer.prepare(data.records, data.images, data.videos)
    video_keys = [s.key for pool in sampler.by_bucket.values() for s in pool if not s.bucket.is_image]
    probe_batch = load_batch(sorted(video_keys)[:2], None, sample_posterior=False)
    x = probe_batch.latents
    with torch.no_grad():
        dit.eval()
        before_out = dit(x, torch.full((2,), 500.0), probe_batch.text_states, probe_batch.text_mask,
                         probe_batch.text_pooled, torch.full((2,), 6000.0))  # fmt: skip
    before = _probe(trainer, probe_batch, i2v)

    result = trainer.train(sampler)
    after = _probe(trainer, probe_batch, i2v)
    with torch.no_grad():
        after_out = dit(x, torch.full((2,), 500.0), probe_batch.text_states, probe_batch.text_mask,
                        probe_batch.text_pooled, torch.full((2,), 6000.0))  # fmt: skip

    assert result.steps == 30 and len(result.losses) == 30
    assert result.encoded > 0 and result.reused == 0
    assert after < 0.8 * before, (before, after)
    assert (after_out - before_out).abs().max() > 1e-3
    # Only the adapter trained: every base tensor is bit-identical, the optimizer holds LoRA params only.
    for key, value in base_state.items():
        if not lowmem:  # (FP8 replaced the block weights by their e4m3 copies)
            assert torch.equal(dit.state_dict()[key], value), key
    lora_params = {id(p) for part in adapter_parts(dit).values() for p in (part.lora_A, part.lora_B)}
    assert {id(p) for g in trainer.optimizer.param_groups for p in g["params"]} == lora_params

    # A second run on the same folder reuses the cached latents and text encodings.
    again = LoRATrainer(_models()[0], vae, text, config, tmp_path / "cache")
    again.prepare(data.records, data.images, data.videos)
    assert again.stats.encoded == 0 and again.stats.reused == result.encoded


def test_i2v_loss_leaves_the_first_frame_out() -> None:
    dit, _, text = _models()
    enc = text.encode(["a", "b"])
    latents = torch.randn(2, 16, 3, 4, 4)
    batch = LatentBatch(latents, enc.states, enc.mask, enc.pooled)
    config = LoRATrainConfig()
    seen: dict[str, torch.Tensor] = {}

    def spy(x, t, states, mask, pooled, guidance=None, first_frame_clean=None):
        seen["clean"] = first_frame_clean
        out = dit(x, t, states, mask, pooled, guidance, first_frame_clean)
        seen["out"] = out
        return out

    loss = flow_matching_loss(spy, batch, config, torch.Generator().manual_seed(0), torch.device("cpu"), True,  # type: ignore[arg-type]
                              first_frame_clean=True).loss  # fmt: skip
    assert torch.equal(seen["clean"], latents[:, :, :1])
    gen = torch.Generator().manual_seed(0)
    from model.flow import model_target, sample_timesteps

    sample_timesteps(2, mean=0.0, std=1.0, shift=1.0, generator=gen)
    noise = torch.randn(latents.shape, generator=gen)
    target = model_target(noise, latents)
    expected = torch.nn.functional.mse_loss(seen["out"][:, :, 1:], target[:, :, 1:])
    assert torch.allclose(loss, expected)


def test_i2v_needs_a_token_replace_model(tmp_path: Path) -> None:
    dit, vae, text = _models(image_condition=None)
    with pytest.raises(LoRATrainError, match="--i2v needs a token_replace"):
        LoRATrainer(dit, vae, text, LoRATrainConfig(i2v=True), tmp_path)


def test_bad_folders_name_the_file(tmp_path: Path) -> None:
    folder = make_lora_folder(tmp_path / "ok", videos=1, images=1)
    (folder / "still0.txt").unlink()
    with pytest.raises(LoRADataError, match=r"still0.png: no caption file still0.txt"):
        read_lora_folder(folder)
    bare = make_lora_folder(tmp_path / "bare", videos=1, images=0)
    (bare / "clip0.txt").unlink()
    with pytest.raises(LoRADataError, match=r"bare: no captions"):
        read_lora_folder(bare)
    broken = make_lora_folder(tmp_path / "broken", videos=1, images=0)
    (broken / "bad.mp4").write_bytes(b"\x00not a video" * 50)
    (broken / "bad.txt").write_text("broken")
    with pytest.raises(LoRADataError, match=r"bad.mp4: cannot be read"):
        read_lora_folder(broken)
    stills = make_lora_folder(tmp_path / "stills", videos=0, images=2)
    assert read_lora_folder(stills).images == 2
    with pytest.raises(LoRADataError, match="needs videos"):
        read_lora_folder(stills, videos_only=True)
    with pytest.raises(LoRADataError, match="does not exist"):
        read_lora_folder(tmp_path / "missing")
    version = read_lora_folder(stills).data_version
    (stills / "still0.txt").write_text("another caption")
    assert read_lora_folder(stills).data_version != version
