"""Caption commands: `videofoundry camera-motion VIDEO` and `videofoundry caption VIDEO`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from orchestration.cli_app import MAX_SEED, CommandFailure, UserError, app, user_errors

PresetOption = Annotated[str, typer.Option("--preset", help="Settings preset: tiny or paper.")]


@app.command("camera-motion")
def camera_motion(
    video: Annotated[Path, typer.Argument(help="Video file holding one shot (or give --start/--end).")],
    start: Annotated[int, typer.Option("--start", help="First frame of the shot (0-based).", min=0)] = 0,
    end: Annotated[int | None, typer.Option("--end", help="One past the last frame.", min=1)] = None,
    preset: PresetOption = "paper",
) -> None:
    """Classify the camera motion of a shot into the report's 14 classes; print JSON."""
    from curation.camera_motion import CameraMotionConfig, CameraMotionError, classify_video
    from model.presets import PresetError

    with user_errors(CameraMotionError, PresetError):
        result = classify_video(video, CameraMotionConfig.preset(preset), start, end)
    typer.echo(json.dumps(result.to_dict(), indent=1))


@app.command("caption")
def caption(
    video: Annotated[Path, typer.Argument(help="Video file holding the clip.")],
    start: Annotated[int, typer.Option("--start", help="First frame of the clip (0-based).", min=0)] = 0,
    end: Annotated[int | None, typer.Option("--end", help="One past the last frame.", min=1)] = None,
    backend: Annotated[
        str, typer.Option("--backend", help="offline (measured facts), endpoint (served VLM) or local_vlm.")
    ] = "offline",
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1."),
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="Served model name (endpoint backend).")
    ] = None,
    model_path: Annotated[
        Path | None, typer.Option("--model-path", help="Local VLM folder (local_vlm backend).")
    ] = None,
    preset: PresetOption = "tiny",
    prompt_seed: Annotated[
        int | None,
        typer.Option(
            "--prompt-seed", help="Also print a training prompt rendered with this seed.", min=0, max=MAX_SEED
        ),
    ] = None,
) -> None:
    """Write the structured caption of one clip and print it as JSON (a failure is printed too)."""
    from curation.captions import CaptionConfig, ClipInput, build_backend
    from media.video import VideoReader
    from training.dit.prompts import parse_caption, render_for_clip

    with user_errors(ValueError):
        config = CaptionConfig.preset(preset)
    if backend not in ("offline", "endpoint", "local_vlm"):
        raise UserError(f"--backend must be offline, endpoint or local_vlm, got {backend!r}")
    endpoint = config.endpoint.model_copy(
        update={k: v for k, v in {"base_url": base_url, "model": model}.items() if v is not None}
    )
    config = config.model_copy(
        update={"backend": backend, "endpoint": endpoint, "local_vlm_path": model_path}
    )
    with user_errors(FileNotFoundError, ValueError):
        writer = build_backend(config)
    VideoReader(video).close()  # a missing, unreadable or audio-only file is bad input, exit 2
    record = writer.caption(ClipInput(video.stem, video, start, end))
    payload = record.model_dump(mode="json")
    if prompt_seed is not None and record.caption is not None:
        payload["training_prompt"] = render_for_clip(
            parse_caption(record.caption.to_json()), record.clip_id, epoch=0, seed=prompt_seed
        )
    typer.echo(json.dumps(payload, indent=1, ensure_ascii=False))
    if record.status == "failed":
        raise CommandFailure(f"captioning {video} failed: {record.error}")
