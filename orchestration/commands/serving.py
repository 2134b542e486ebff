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
    device: DeviceOption = "auto",
    dtype: DtypeOption = None,
    cpu_offload: OffloadOption = None,
    vae_tile_size: TileOption = None,
    cpu_threads: ThreadsOption = None,
    home: HomeOption = None,
    profile: ProfileOption = None,
) -> None:
    """Generate one video (T2V, or I2V with --image) and write it as H.264 mp4 + thumbnail."""
    from serving import BundleError, InvalidRequestError, ModelReferenceError, write_mp4
    from serving import generate as serve_generate

    output_file(out, "--out", ".mp4")
    config, platform = _serving_setup(
        home, profile, device=device, dtype=dtype, cpu_offload=cpu_offload, vae_tile_size=vae_tile_size,
        cpu_threads=cpu_threads,
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

    try:
        video = serve_generate(
            prompt, image, model=model, config=config, tracking_uri=platform.tracking_uri,
            registered_model=platform.tracking.registered_model,
            shift=shift, guidance=guidance, cfg_scale=cfg_scale, negative_prompt=negative_prompt, seed=seed,
            i2v_stability=stability, progress=progress, **size,
        )  # fmt: skip
    except (InvalidRequestError, ModelReferenceError, BundleError) as error:
        raise UserError(str(error)) from error
    finally:
        if "bar" in bar:
            bar["bar"].close()  # type: ignore[attr-defined]
    path = write_mp4(video, out)
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
) -> None:
    """Serve the Gradio demo (T2V + I2V) on 127.0.0.1; without --model it follows the champion alias.

    A --model that cannot load fails here, before the port is bound (exit 2)."""
    from serving import load_pipeline
    from ui.demo import DemoConfig, launch_demo

    config, platform = _serving_setup(
        home, profile, device=device, dtype=dtype, cpu_offload=cpu_offload, vae_tile_size=vae_tile_size,
        cpu_threads=cpu_threads,
    )  # fmt: skip
    registered = platform.tracking.registered_model
    if model is not None:
        load_pipeline(model, config=config, tracking_uri=platform.tracking_uri, registered_model=registered)
    demo = DemoConfig(model=model, tracking_uri=platform.tracking_uri, registered_model=registered, serving=config,
                      concurrency_limit=concurrency, output_dir=str(platform.workspace.home / "demo_outputs"))  # fmt: skip
    typer.echo(f"demo on http://127.0.0.1:{port} (model: {model or f'models:/{registered}@champion'})")
    launch_demo(demo, port=port)
