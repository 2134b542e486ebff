"""The demo lists the LoRAs registered in MLflow and applies the chosen one at a scale."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from model.lora import LoRASettings, inject_lora
from model.lora_format import save_lora
from serving import ServingConfig, build_tiny_random, read_mp4
from training.dit.lora_registry import LoRARecord, register_lora
from training.tracking import TrackingSettings
from ui.demo import DemoBackend, DemoConfig, build_demo


class _Progress:
    def __call__(self, value: tuple[int, int], desc: str | None = None, unit: str = "steps") -> None:
        pass


@pytest.mark.slow  # a fresh MLflow SQLite registry: ~20 s of schema migrations on the shared CPU
def test_demo_lists_registered_loras_and_applies_one(tmp_path: Path) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    transformer, _, _ = build_tiny_random()
    settings = LoRASettings(rank=4)
    with torch.no_grad():
        for p in inject_lora(transformer, settings):
            p.normal_(0, 0.3)
    path = save_lora(transformer, tmp_path / "ink.safetensors", settings)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    record = LoRARecord(
        "ink", path, "tiny-random (seed 0, untrained)", "tiny-random", "loradata:1", "{}", "t2v", 4, (1.0,)
    )
    register_lora(record, TrackingSettings(uri=uri, artifact_location=tmp_path / "artifacts"))
    serving = ServingConfig.preset("tiny", device="cpu", cache_dir=str(tmp_path / "cache"))
    backend = DemoBackend(
        DemoConfig(model="tiny-random", tracking_uri=uri, serving=serving, output_dir=str(tmp_path / "out"))
    )
    choices = backend.lora_choices()
    assert choices == [
        ("(none)", ""),
        (
            "videofoundry-lora-ink v1 (t2v, base tiny-random (seed 0, untrained))",
            "models:/videofoundry-lora-ink/1",
        ),
    ]
    args = ("a kite", "", None, 32, 48, 5, 3, 5, 6.0, 1.0, False, _Progress(), False)
    base_path, _, _ = backend.run(*args)
    lora_path, status, _ = backend.run(*args, choices[1][1], 1.5)
    zero_path, _, _ = backend.run(*args, choices[1][1], 0.0)
    assert "at scale 1.5" in status
    base, adapted, zero = (read_mp4(p).frames for p in (base_path, lora_path, zero_path))
    assert (adapted.astype(int) - base).__abs__().mean() > 0.5
    assert (zero == base).all()
    demo = build_demo(backend.config)
    dropdowns = [c for c in demo.blocks.values() if getattr(c, "elem_id", None) == "t2v-lora"]
    assert [value for _, value in dropdowns[0].choices] == ["", "models:/videofoundry-lora-ink/1"]
    torch.set_num_threads(threads)
