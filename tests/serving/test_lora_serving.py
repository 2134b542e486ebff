"""LoRAs in serving: `generate(..., loras=..., lora_mode=...)` on tiny-random, from a file and from
the registry; scale 0 is bit-identical to the base, merge matches adapter mode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from model.lora import LoRASettings, inject_lora
from model.lora_format import save_lora
from serving import (
    InvalidRequestError,
    LoRASpec,
    ServingConfig,
    build_tiny_random,
    generate,
    lora_specs,
    registered_loras,
)
from training.dit.lora_registry import LoRARecord, register_lora
from training.tracking import TrackingSettings

SETTINGS = {"height": 32, "width": 48, "frames": 5, "steps": 3, "seed": 0}
PROMPT = "a red square moving right"


@pytest.fixture(scope="module")
def lora_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random (non-zero) LoRA on every target of tiny-random's DiT."""
    transformer, _, _ = build_tiny_random()
    settings = LoRASettings(rank=4, targets=("attn", "mlp", "modulation"))
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in inject_lora(transformer, settings):
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    return save_lora(transformer, tmp_path_factory.mktemp("lora") / "style.safetensors", settings)


def _frames(config: ServingConfig, **kwargs) -> np.ndarray:
    return generate(PROMPT, model="tiny-random", config=config, **SETTINGS, **kwargs).frames


def test_scale_zero_is_the_base_and_scales_change_the_video(
    tiny_config: ServingConfig, lora_file: Path
) -> None:
    base = _frames(tiny_config)
    assert np.array_equal(_frames(tiny_config, loras=[LoRASpec(str(lora_file), 0.0)]), base)
    assert np.array_equal(
        _frames(tiny_config, loras=[LoRASpec(str(lora_file), 0.0)], lora_mode="merge"), base
    )
    video = generate(
        PROMPT, model="tiny-random", config=tiny_config, loras=[LoRASpec(str(lora_file), 1.0)], **SETTINGS
    )
    adapted = video.frames
    assert np.abs(adapted.astype(int) - base).mean() > 1.0
    assert (
        video.metadata["loras"][0]["layout"] == "diffusers"
        and video.metadata["loras"][0]["mode"] == "adapter"
    )
    # Two copies at half scale = one at full scale; merged = adapter mode (up to rounding).
    halves = _frames(tiny_config, loras=list(lora_specs([str(lora_file)] * 2, [0.5])))
    assert np.abs(halves.astype(int) - adapted).max() <= 2
    merged = _frames(tiny_config, loras=[LoRASpec(str(lora_file), 1.0)], lora_mode="merge")
    assert np.abs(merged.astype(int) - adapted).max() <= 2
    # After a merge, asking for the base again reloads it: bit-identical base output.
    assert np.array_equal(_frames(tiny_config), base)


@pytest.mark.slow  # a fresh MLflow SQLite registry: ~20 s of schema migrations on the shared CPU
def test_registered_lora_is_listed_and_served_by_uri(
    tiny_config: ServingConfig, lora_file: Path, tmp_path: Path
) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    record = LoRARecord("style", lora_file, "tiny-random (seed 0, untrained)", "tiny-random", "loradata:abc",
                        '{"rank": 4}', "t2v", 4, (1.0, 0.5))  # fmt: skip
    name, version, _ = register_lora(
        record, TrackingSettings(uri=uri, artifact_location=tmp_path / "artifacts")
    )
    assert (name, version) == ("videofoundry-lora-style", "1")
    listed = registered_loras(uri)
    assert listed == [{"name": name, "version": "1", "uri": f"models:/{name}/1", "base_model": record.base_model,
                       "data_version": "loradata:abc", "task": "t2v"}]  # fmt: skip
    from_file = _frames(tiny_config, loras=[LoRASpec(str(lora_file), 0.7)])
    from_registry = generate(PROMPT, model="tiny-random", config=tiny_config, tracking_uri=uri,
                             loras=[LoRASpec(listed[0]["uri"], 0.7)], **SETTINGS).frames  # fmt: skip
    assert np.array_equal(from_registry, from_file)


def test_bad_lora_requests_fail_before_generating(tiny_config: ServingConfig, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    other = tmp_path / "sdxl.safetensors"
    save_file({"lora_unet_down_blocks_0_attn1_to_q.lora_down.weight": torch.zeros(4, 320),
               "lora_unet_down_blocks_0_attn1_to_q.lora_up.weight": torch.zeros(320, 4)}, str(other))  # fmt: skip
    with pytest.raises(InvalidRequestError, match=r"sdxl.safetensors: LoRA for another architecture"):
        _frames(tiny_config, loras=[LoRASpec(str(other))])
    with pytest.raises(InvalidRequestError, match="no such file"):
        _frames(tiny_config, loras=[LoRASpec(str(tmp_path / "missing.safetensors"))])
    with pytest.raises(InvalidRequestError, match="2 --lora-scale values for 3 LoRAs"):
        lora_specs(["a", "b", "c"], [1.0, 2.0])
