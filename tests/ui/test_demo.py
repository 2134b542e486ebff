"""The demo's callbacks without a browser: validation messages, truncation notice, per-step progress."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import pytest
import torch

from serving import ServingConfig, generate, read_mp4, write_mp4
from ui.demo import DECODE_DESC, DemoBackend, DemoConfig, build_demo, example_images, generate_blocker


@pytest.fixture()
def backend(tmp_path: Path) -> Iterator[DemoBackend]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small shared CI box: one intra-op thread is much faster for the tiny model
    serving = ServingConfig.preset("tiny", device="cpu", cache_dir=str(tmp_path / "cache"))
    yield DemoBackend(DemoConfig(model="tiny-random", serving=serving, output_dir=str(tmp_path / "out")))
    torch.set_num_threads(threads)


class ProgressLog:
    """Stands in for gr.Progress outside a request: records each (step, total) it is given, and
    each label given without a count."""

    def __init__(self) -> None:
        self.updates: list[tuple[int, int]] = []
        self.labels: list[tuple[int, str | None]] = []  # (updates so far, label)

    def __call__(self, value: tuple[int, int] | None, desc: str | None = None, unit: str = "steps") -> None:
        if value is None:
            self.labels.append((len(self.updates), desc))
        else:
            self.updates.append(value)


def _run(backend: DemoBackend, prompt: str = "a kite", **overrides: object) -> tuple[str, str, str]:
    args: dict[str, object] = {
        "prompt": prompt, "negative_prompt": "", "image": None, "height": 32, "width": 48, "frames": 5,
        "steps": 3, "seed": 5, "guidance": 6.0, "cfg_scale": 1.0, "stability": False, "progress": ProgressLog(),
        "i2v": False,
    }  # fmt: skip
    args.update(overrides)
    return backend.run(**args)  # type: ignore[arg-type]


def test_generation_writes_mp4_reports_version_and_progress_per_step(backend: DemoBackend) -> None:
    progress = ProgressLog()
    path, status, banner = _run(backend, progress=progress)
    assert progress.updates == [(0, 3), (1, 3), (2, 3), (3, 3)]
    assert progress.labels == [(4, DECODE_DESC)]  # after the last step: the VAE decode is labelled
    video = read_mp4(path)
    assert video.num_frames == 5 and (video.height, video.width) == (32, 48)
    assert "tiny-random (seed 0, untrained)" in banner and "seed 5" in status
    assert video.metadata["model_version"] == "tiny-random (seed 0, untrained)"


def test_the_demo_video_is_the_one_serving_generate_makes(backend: DemoBackend, tmp_path: Path) -> None:
    path, _, _ = _run(backend, prompt="a red kite", seed=11, cfg_scale=2.0, negative_prompt="fog")
    direct = generate(
        "a red kite", model="tiny-random", config=backend.config.serving, height=32, width=48, frames=5,
        steps=3, seed=11, guidance=6.0, cfg_scale=2.0, negative_prompt="fog",
    )  # fmt: skip
    demo_video, direct_video = read_mp4(path), read_mp4(write_mp4(direct, tmp_path / "direct.mp4"))
    assert np.array_equal(demo_video.frames, direct_video.frames)
    assert demo_video.metadata["negative_prompt"] == "fog" and demo_video.metadata["cfg_scale"] == 2.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"frames": 6}, "frames 6 is not of the form 4n+1"),
        ({"height": 40}, "height 40 is not a multiple of 16"),
        ({"prompt": "   "}, "prompt is empty"),
        ({"i2v": True}, "image-to-video needs an image"),
        ({"steps": 2.5}, "steps must be a whole number, got 2.5"),  # not truncated to 2
        ({"frames": 5.5}, "frames must be a whole number, got 5.5"),
        ({"seed": float(2**70)}, "seed must be an integer in [0, 2^63 - 1]"),  # not an overflow
        ({"seed": -5}, "seed must be an integer in [0, 2^63 - 1]"),  # only -1 means "draw one"
    ],
)
def test_invalid_input_becomes_a_gradio_error(backend: DemoBackend, overrides: dict, message: str) -> None:
    with pytest.raises(gr.Error, match=re.escape(message)):
        _run(backend, **overrides)


def test_long_prompt_truncated_with_notice(backend: DemoBackend) -> None:
    long_prompt = " ".join(f"w{i}" for i in range(30))
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        _, status, _ = _run(backend, prompt=long_prompt)
    assert "was 31 tokens long" in status and "truncated to" in status


def test_no_champion_shows_a_clear_banner(tmp_path: Path) -> None:
    serving = ServingConfig.preset("tiny", device="cpu", cache_dir=str(tmp_path / "cache"))
    demo_config = DemoConfig(model=None, tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", serving=serving)
    banner = DemoBackend(demo_config).model_banner()
    assert "not available" in banner and "no 'champion' alias" in banner
    demo = build_demo(demo_config)  # the app still builds, so `videofoundry up` keeps running
    assert isinstance(demo, gr.Blocks)


def test_queue_has_a_concurrency_limit_shared_by_both_tabs(tmp_path: Path) -> None:
    serving = ServingConfig.preset("tiny", device="cpu", cache_dir=str(tmp_path / "cache"))
    demo = build_demo(DemoConfig(model="tiny-random", serving=serving, concurrency_limit=1, max_queue=4))
    generate_fns = {f.api_name: f for f in demo.fns.values() if str(f.api_name).startswith("generate_")}
    assert sorted(generate_fns) == ["generate_i2v", "generate_t2v"]
    # One shared concurrency group: a T2V and an I2V request never run at the same time.
    assert {(f.concurrency_limit, f.concurrency_id) for f in generate_fns.values()} == {(1, "generate")}
    assert demo._queue.max_size == 4


def test_advanced_speed_switches_reach_serving_and_are_reported(backend: DemoBackend) -> None:
    plain, _, _ = _run(backend, steps=6)
    path, status, _ = _run(backend, steps=6, fp8=True, sparse=True, step_cache=0.5)
    meta = read_mp4(path).metadata
    assert meta["fp8"] is True and meta["sta_window"] == [3, 3, 5] and meta["steps_skipped"] >= 1
    assert "Speed switches: FP8, sliding-tile attention, step cache (" in status
    assert not np.array_equal(read_mp4(plain).frames, read_mp4(path).frames)
    assert "Speed switches" not in _run(backend, steps=6)[1]


def _component(demo: gr.Blocks, elem_id: str) -> Any:
    return next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == elem_id)


def test_both_tabs_start_ready_with_an_example_and_i2v_examples_match_their_photos(tmp_path: Path) -> None:
    serving = ServingConfig.preset("tiny", device="cpu", cache_dir=str(tmp_path / "cache"))
    demo = build_demo(DemoConfig(model="tiny-random", serving=serving, output_dir=str(tmp_path / "out")))
    photos = example_images()
    assert [Path(path).name for path, _ in photos] == ["astronaut.png", "coffee.png", "chelsea.png"]
    assert "astronaut" in photos[0][1] and "coffee" in photos[1][1] and "cat" in photos[2][1]
    assert _component(demo, "t2v-prompt").value.strip()
    assert _component(demo, "i2v-prompt").value == photos[0][1]
    assert _component(demo, "i2v-image").value is not None  # the example photo, so I2V works as shown
    for prefix in ("t2v", "i2v"):
        assert _component(demo, f"{prefix}-generate").interactive is not False
        assert _component(demo, f"{prefix}-hint").value == ""


def test_the_page_says_what_the_served_model_is_and_what_to_expect(tmp_path: Path) -> None:
    serving = ServingConfig.preset("tiny", device="cpu", cache_dir=str(tmp_path / "cache"))
    tiny = DemoConfig.preset("tiny", model="tiny-random", serving=serving)
    about = _component(build_demo(tiny), "model-about").value
    from model.dit import HunyuanDiT
    from model.dit_config import DiTConfig
    from model.vae import CausalVAE3D, VAEConfig
    from training.dit.config import DiTTrainConfig

    lineage = DiTTrainConfig.preset("demo")  # the sizes the text states are the lineage's
    dit = HunyuanDiT(DiTConfig.preset(lineage.dit_preset, **lineage.dit_overrides))
    vae = CausalVAE3D(VAEConfig.preset(lineage.vae_preset))
    for model, what in ((dit, "DiT"), (vae, "causal 3D VAE")):
        assert f"{sum(p.numel() for p in model.parameters()) / 1e6:.2f} M-parameter {what}" in about
    for fact in ("SmolLM2-135M", "MiniLM", "32 px, 5 frames", "SFT clips", "first frame"):
        assert fact in about, fact
    assert "13B" in DemoConfig.preset("paper").about
    bare = build_demo(DemoConfig(model="tiny-random", serving=serving))  # no text: no empty block
    assert not any(getattr(b, "elem_id", None) == "model-about" for b in bare.blocks.values())


def test_generate_is_blocked_with_a_reason() -> None:
    assert generate_blocker("", None, False, None).startswith("Type a prompt")
    assert generate_blocker("  ", None, False, None).startswith("Type a prompt")
    assert generate_blocker("a kite", None, False, "text-to-video only") == ""  # T2V ignores I2V support
    assert generate_blocker("a kite", None, True, None).startswith("Upload a first frame")
    assert generate_blocker("a kite", np.zeros((4, 4, 3)), True, "model is T2V only") == "model is T2V only"
    assert generate_blocker("a kite", np.zeros((4, 4, 3)), True, None) == ""


def test_a_text_to_video_only_model_disables_the_i2v_tab_with_the_reason(tmp_path: Path) -> None:
    from model.bundle import save_pipeline
    from model.dit import HunyuanDiT
    from model.dit_config import DiTConfig
    from model.vae import CausalVAE3D, VAEConfig

    torch.manual_seed(0)
    transformer = HunyuanDiT(DiTConfig.preset("tiny"))  # no image conditioning
    bundle = save_pipeline(
        tmp_path / "t2v", transformer, CausalVAE3D(VAEConfig.preset("tiny")), "tiny-random", fps=8
    )
    serving = ServingConfig.preset("tiny", device="cpu", cache_dir=str(tmp_path / "cache"))
    config = DemoConfig(model=str(bundle), serving=serving, output_dir=str(tmp_path / "out"))
    reason = DemoBackend(config).image_to_video_unsupported()
    assert reason is not None and "text-to-video only" in reason and "local t2v" in reason
    demo = build_demo(config)
    assert _component(demo, "i2v-generate").interactive is False
    assert _component(demo, "i2v-hint").value == reason
    assert _component(demo, "i2v-image").value is None
    assert _component(demo, "t2v-generate").interactive is not False
    assert DemoBackend(DemoConfig(model="tiny-random", serving=serving)).image_to_video_unsupported() is None


def test_the_rewrite_checkbox_shows_the_rewritten_prompt(tmp_path: Path) -> None:
    """The T2V tab's own callback with the checkbox on (mode master) and off, against a local server."""
    from tests.serving.chat_server import chat_server, completion, refused_url

    with chat_server() as server:
        server.reply = lambda body: (200, completion("A red kite over a grey sea. Style: wide shot."))
        serving = ServingConfig.preset(
            "tiny", device="cpu", cache_dir=str(tmp_path / "cache"),
            rewrite={"backend": "endpoint", "base_url": server.base_url},
        )  # fmt: skip
        demo = build_demo(DemoConfig(model="tiny-random", serving=serving, output_dir=str(tmp_path / "out")))
        ids = {getattr(block, "elem_id", None) for block in demo.blocks.values()}
        assert {"t2v-rewrite", "t2v-rewrite-mode", "i2v-rewrite"} <= ids
        t2v = next(f for f in demo.fns.values() if f.api_name == "generate_t2v").fn
        assert t2v is not None
        form = ["kite", "", None, 32, 48, 5, 3, 5, 6.0, 1.0, False, "", 1.0, False, False, 0.0]
        path, status, _ = t2v(*form, True, "master", progress=ProgressLog())
        assert "**Rewritten prompt** (master): A red kite over a grey sea. Style: wide shot." in status
        assert read_mp4(path).metadata["prompt"] == "A red kite over a grey sea. Style: wide shot."
        assert "You prepare prompts" in server.requests[0][2]["messages"][0]["content"]
        _, plain, _ = t2v(*form, False, "master", progress=ProgressLog())  # off: no request, no line
        assert len(server.requests) == 1 and "Rewritten prompt" not in plain
    backend = DemoBackend(
        DemoConfig(model="tiny-random", serving=serving.replace(rewrite={"base_url": refused_url()}))
    )
    with pytest.raises(gr.Error, match="is unreachable"):
        _run(backend, prompt="kite", rewrite="normal")
