"""Serving commands: `videofoundry generate` (one video to an mp4) and `videofoundry serve demo`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from orchestration.cli_app import (
    MAX_SEED,
    HomeOption,
    ProfileOption,
    UserError,
    app,
    output_file,
    platform_config,
    serve_app,
    user_errors,
)

if TYPE_CHECKING:
    from orchestration.config import PlatformConfig
    from serving import ServingConfig

ModelOption = Annotated[
    str | None,
    typer.Option(
        "--model",
        help="tiny-random | models:/videofoundry-dit@champion | models:/NAME/VERSION | runs:/ID/pipeline | "
        "a bundle path. Default: the registry's champion.",
    ),
]


DeviceOption = Annotated[str, typer.Option("--device", help="auto | cpu | cuda | cuda:N")]
DtypeOption = Annotated[
    str | None, typer.Option("--dtype", help="float32 | bfloat16 | float16 (default per profile).")
]
OffloadOption = Annotated[
    bool | None,
    typer.Option(
        "--cpu-offload/--no-cpu-offload", help="Move each model part to the device only for its stage."
    ),
]
TileOption = Annotated[
    int | None, typer.Option("--vae-tile-size", help="VAE decode tile edge in pixels.", min=16)
]
ThreadsOption = Annotated[
    int | None, typer.Option("--cpu-threads", help="Torch threads for CPU work.", min=1)
]
RewriteUrlOption = Annotated[
    str | None,
    typer.Option("--rewrite-url", help="OpenAI-compatible …/v1 that rewrites prompts (default per profile)."),
]
RewriteModelOption = Annotated[
    str | None, typer.Option("--rewrite-model", help="The served model name at --rewrite-url.")
]


def _rewrite_overrides(url: str | None, model: str | None) -> dict[str, str] | None:
    """The `ServingConfig.rewrite` changes --rewrite-url / --rewrite-model ask for (a URL means the
    endpoint backend); None when neither is given."""
    changes = {"backend": "endpoint", "base_url": url} if url else {}
    return changes | ({"model": model} if model else {}) or None


def _triple(option: str, text: str | None) -> tuple[int, int, int] | None:
    """'3,3,5' -> (3, 3, 5); a `UserError` naming `option` otherwise."""
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 3:
        raise UserError(f"{option} {text!r}: give three integers T,H,W, e.g. 3,3,5")
    return values  # type: ignore[return-value]


def _serving_setup(
    home: Path | None, profile: str | None, **overrides: object
) -> tuple[ServingConfig, PlatformConfig]:
    """The profile's ServingConfig with the command's overrides (as the evaluation assets build it),
    and the platform config (tracking URI, registered model, workspace)."""
    from serving.config import ServingConfig, serving_config

    platform = platform_config(home, profile, None)
    with user_errors(ValueError):
        base = platform.config_for(ServingConfig)
        return serving_config(base, str(platform.workspace.serving_cache), **overrides), platform


@app.command()
def generate(
    prompt: Annotated[str, typer.Option("--prompt", help="What the video shows.")],
    out: Annotated[Path, typer.Option("--out", help="Output .mp4 (a .png thumbnail is written beside it).")],
    image: Annotated[Path | None, typer.Option("--image", help="First frame for image-to-video.")] = None,
    model: ModelOption = None,
    height: int = typer.Option(None, help="Pixels, multiple of 16 (default: 64 tiny / 544 paper).", min=1),
    width: int = typer.Option(None, help="Pixels, multiple of 16 (default: 96 tiny / 960 paper).", min=1),
    frames: int = typer.Option(None, help="4n+1 frames (default: 9 tiny / 129 paper).", min=1),
    steps: int = typer.Option(None, help="Denoising steps (default: 8 tiny / 50 paper).", min=1),
    shift: float | None = typer.Option(None, help="Flow shift (default: 7 for >= 20 steps, else 17)."),
    guidance: float = typer.Option(6.0, help="Embedded guidance scale."),
    cfg_scale: float = typer.Option(1.0, "--cfg-scale", help="Real CFG scale; > 1 uses --negative-prompt."),
    negative_prompt: str = typer.Option("", "--negative-prompt"),
    seed: int = typer.Option(0, help="Noise seed (same seed, same video).", min=0, max=MAX_SEED),
    stability: bool = typer.Option(False, "--stability", help="I2V stability start."),
    lora: list[str] | None = typer.Option(
        None, "--lora", help="LoRA .safetensors or models:/videofoundry-lora-NAME/N (repeatable)."
    ),
    lora_scale: list[float] | None = typer.Option(
        None, "--lora-scale", help="Scale of each --lora (one for all, or one each; 0 = base output)."
    ),
    lora_mode: str = typer.Option("adapter", "--lora-mode", help="adapter | merge (fold into the weights)."),
    device: DeviceOption = "auto",
    dtype: DtypeOption = None,
    cpu_offload: OffloadOption = None,
    vae_tile_size: TileOption = None,
    cpu_threads: ThreadsOption = None,
    fp8: Annotated[bool | None, typer.Option("--fp8/--no-fp8", help="FP8 e4m3 DiT weights.")] = None,
    sta_window: Annotated[
        str | None, typer.Option("--sta-window", help="Sliding-tile attention window in tiles, T,H,W (odd).")
    ] = None,
    sta_dense_steps: Annotated[
        int | None, typer.Option("--sta-dense-steps", min=0, help="First steps with dense attention.")
    ] = None,
    step_cache: Annotated[
        float | None, typer.Option("--step-cache", min=0.0, help="Step-cache threshold (TeaCache-style).")
    ] = None,
    step_cache_calibration: Annotated[
        Path | None, typer.Option("--step-cache-calibration", help="File from `calibrate-cache`.")
    ] = None,
    block_offload: Annotated[
        bool | None, typer.Option("--block-offload/--no-block-offload", help="Stream DiT blocks from CPU.")
    ] = None,
    max_vram: Annotated[
        float | None, typer.Option("--max-vram", min=1.0, help="GPU memory budget in GB; picks the switches.")
    ] = None,
    ffn_chunk_tokens: Annotated[
        int | None,
        typer.Option("--ffn-chunk-tokens", min=1, help="Run DiT blocks over token slices (low memory)."),
    ] = None,
    rewrite: Annotated[
        str | None, typer.Option("--rewrite", help="Rewrite the prompt first (printed): normal | master.")
    ] = None,
    rewrite_url: RewriteUrlOption = None,
    rewrite_model: RewriteModelOption = None,
    home: HomeOption = None,
    profile: ProfileOption = None,
) -> None:
    """Generate one video (T2V, or I2V with --image) and write it as H.264 mp4 + thumbnail.

    With --rewrite an LLM first rewrites the prompt into the training captions' style (the tiny
    profile's offline SmolLM2, or the endpoint of --rewrite-url / the profile)."""
    from serving import BundleError, InvalidRequestError, ModelReferenceError, lora_specs, write_mp4
    from serving import generate as serve_generate

    output_file(out, "--out", ".mp4")
    if rewrite is not None and rewrite not in ("normal", "master"):
        raise UserError(f"--rewrite {rewrite!r} must be normal or master")
    config, platform = _serving_setup(
        home, profile, device=device, dtype=dtype, cpu_offload=cpu_offload, vae_tile_size=vae_tile_size,
        cpu_threads=cpu_threads, fp8=fp8, sta_window=_triple("--sta-window", sta_window),
        sta_dense_steps=sta_dense_steps, step_cache=step_cache, block_offload=block_offload, max_vram_gb=max_vram,
        step_cache_calibration=str(step_cache_calibration) if step_cache_calibration else None,
        ffn_chunk_tokens=ffn_chunk_tokens,
        rewrite=_rewrite_overrides(rewrite_url, rewrite_model),
    )  # fmt: skip
    size = {
        "height": height or config.default_height,
        "width": width or config.default_width,
        "frames": frames or config.default_frames,
        "steps": steps or config.default_steps,
    }
    bar: dict[str, object] = {}

    def progress(step: int, total: int) -> None:
        from tqdm import tqdm

        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc="denoising", unit="step")
        bar["bar"].update(1)  # type: ignore[attr-defined]

    if lora_mode not in ("adapter", "merge"):
        raise UserError(f"--lora-mode {lora_mode!r} must be adapter or merge")
    try:
        video = serve_generate(
            prompt, image, model=model, config=config, tracking_uri=platform.tracking_uri,
            registered_model=platform.tracking.registered_model,
            loras=lora_specs(lora, lora_scale), lora_mode=lora_mode,  # type: ignore[arg-type]
            shift=shift, guidance=guidance, cfg_scale=cfg_scale, negative_prompt=negative_prompt, seed=seed,
            i2v_stability=stability, progress=progress, rewrite=rewrite, **size,
        )  # fmt: skip
    except (InvalidRequestError, ModelReferenceError, BundleError) as error:
        raise UserError(str(error)) from error
    finally:
        if "bar" in bar:
            bar["bar"].close()  # type: ignore[attr-defined]
    path = write_mp4(video, out)
    if rewrite is not None:
        typer.echo(f"rewritten prompt ({rewrite}): {video.metadata['prompt']}")
    if video.metadata.get("prompt_notice"):
        typer.echo(f"note: {video.metadata['prompt_notice']}")
    typer.echo(
        f"wrote {path} ({video.num_frames} frames {video.width}x{video.height} @ {video.fps:g} fps, seed {video.metadata['seed']}) "
        f"with {video.model_version}; thumbnail {path.with_suffix('.png')}"
    )


@serve_app.command("demo")
def serve_demo(
    port: int = typer.Option(7860, help="Port on 127.0.0.1.", min=0, max=65535),
    home: HomeOption = None,
    profile: ProfileOption = None,
    model: ModelOption = None,
    concurrency: int = typer.Option(1, help="Generations that run at once.", min=1),
    device: DeviceOption = "auto",
    dtype: DtypeOption = None,
    cpu_offload: OffloadOption = None,
    vae_tile_size: TileOption = None,
    cpu_threads: ThreadsOption = None,
    rewrite_url: RewriteUrlOption = None,
    rewrite_model: RewriteModelOption = None,
) -> None:
    """Serve the Gradio demo (T2V + I2V) on 127.0.0.1; without --model it follows the champion alias.

    A --model that cannot load fails here, before the port is bound (exit 2)."""
    from serving import load_pipeline
    from ui.demo import DemoConfig, launch_demo

    config, platform = _serving_setup(
        home, profile, device=device, dtype=dtype, cpu_offload=cpu_offload, vae_tile_size=vae_tile_size,
        cpu_threads=cpu_threads, rewrite=_rewrite_overrides(rewrite_url, rewrite_model),
    )  # fmt: skip
    registered = platform.tracking.registered_model
    if model is not None:
        load_pipeline(model, config=config, tracking_uri=platform.tracking_uri, registered_model=registered)
    demo = platform.config_for(  # the profile's page text (what the model is), this command's settings
        DemoConfig, model=model, tracking_uri=platform.tracking_uri, registered_model=registered, serving=config,
        concurrency_limit=concurrency, output_dir=str(platform.workspace.home / "demo_outputs"),
    )  # fmt: skip
    typer.echo(f"demo on http://127.0.0.1:{port} (model: {model or f'models:/{registered}@champion'})")
    launch_demo(demo, port=port)


@app.command("calibrate-cache")
def calibrate_cache(
    out: Annotated[Path, typer.Option("--out", help="Calibration file to write (JSON).")],
    model: ModelOption = None,
    prompts: Annotated[
        Path | None, typer.Option("--prompts", help="Text file, one prompt a line (default: built-in four).")
    ] = None,
    steps: Annotated[int | None, typer.Option("--steps", min=2, help="Sampling steps per prompt.")] = None,
    height: Annotated[int | None, typer.Option("--height")] = None,
    width: Annotated[int | None, typer.Option("--width")] = None,
    frames: Annotated[int | None, typer.Option("--frames")] = None,
    device: DeviceOption = "auto",
    home: HomeOption = None,
    profile: ProfileOption = None,
) -> None:
    """Fit the step cache's rescaling on a model; use the file with `generate --step-cache-calibration`."""
    from serving import BundleError, GenerationSettings, InvalidRequestError, ModelReferenceError
    from serving.calibration import calibrate_step_cache

    config, platform = _serving_setup(home, profile, device=device)
    lines = CALIBRATION_PROMPTS
    if prompts is not None:
        try:
            lines = [line.strip() for line in prompts.read_text().splitlines() if line.strip()]
        except (OSError, UnicodeDecodeError) as error:
            raise UserError(f"--prompts {prompts}: cannot read ({error})") from error
    settings = GenerationSettings(
        height=height or config.default_height, width=width or config.default_width,
        frames=frames or config.default_frames, steps=steps or max(config.default_steps, 8),
    )  # fmt: skip
    try:
        result = calibrate_step_cache(
            model, lines, out, config=config, settings=settings, tracking_uri=platform.tracking_uri,
            registered_model=platform.tracking.registered_model,
        )  # fmt: skip
    except (InvalidRequestError, ModelReferenceError, BundleError, ValueError) as error:
        raise UserError(str(error)) from error
    shares = ", ".join(f"{t:g}: {s:.0%}" for t, s in result.computed_share.items())
    typer.echo(f"wrote {result.path} ({result.pairs} step pairs); steps computed per threshold: {shares}")


CALIBRATION_PROMPTS = [
    "A red kite dances over a stormy sea, the camera slowly pans right.",
    "Aerial shot of a winding mountain road at sunset, warm light.",
    "Close-up of raindrops running down a window at night.",
    "A dog runs across a snowy field toward the camera.",
]
