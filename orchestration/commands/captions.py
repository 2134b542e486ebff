"""Caption commands: `videofoundry camera-motion VIDEO` and `videofoundry caption VIDEO`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from orchestration.cli_app import UserError, app

PresetOption = Annotated[str, typer.Option("--preset", help="Settings preset: tiny or paper.")]


@app.command("camera-motion")
def camera_motion(
    video: Annotated[Path, typer.Argument(help="Video file holding one shot (or give --start/--end).")],
    start: Annotated[int, typer.Option("--start", help="First frame of the shot (0-based).")] = 0,
    end: Annotated[int | None, typer.Option("--end", help="One past the last frame.")] = None,
    preset: PresetOption = "paper",
) -> None:
    """Classify the camera motion of a shot into the report's 14 classes; print JSON."""
    from curation.camera_motion import CameraMotionConfig, CameraMotionError, classify_video

    if preset not in ("tiny", "paper"):
        raise UserError(f"--preset must be tiny or paper, got {preset!r}")
    config = CameraMotionConfig.tiny() if preset == "tiny" else CameraMotionConfig.paper()
    try:
        result = classify_video(video, config, start, end)
    except CameraMotionError as error:
        raise UserError(str(error)) from error
    typer.echo(json.dumps(result.to_dict(), indent=1))
