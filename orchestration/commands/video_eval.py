"""`videofoundry eval-videos DIR`: offline metrics and calibrated gates over a folder of videos."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from orchestration.cli_app import ProfileOption, UserError, app, output_file, platform_config

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".mpg", ".mpeg", ".m4v")


def _videos_in(folder: Path, what: str) -> list[Path]:
    if not folder.is_dir():
        raise UserError(f"{what} {folder}: not a folder")
    videos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise UserError(f"{what} {folder}: no video files ({', '.join(VIDEO_SUFFIXES)})")
    return videos


def _prompts_for(videos: list[Path], prompts_file: Path) -> list[str]:
    """One prompt per video from a JSON object {"<file name in DIR>": "<prompt>", …}."""
    try:
        mapping = json.loads(prompts_file.read_text())
    except OSError as error:
        raise UserError(f"--prompts {prompts_file}: cannot read ({error.strerror})") from error
    except json.JSONDecodeError as error:
        raise UserError(f"--prompts {prompts_file}: not JSON ({error.msg} at line {error.lineno})") from error
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise UserError(f'--prompts {prompts_file}: expected a JSON object {{"video.mp4": "prompt", …}}')
    names = [video.name for video in videos]
    missing = [name for name in names if name not in mapping]
    unknown = sorted(set(mapping) - set(names))
    if missing or unknown:
        problems = ([f"no prompt for {', '.join(missing[:5])}"] if missing else []) + (
            [f"prompts for files not in the folder: {', '.join(unknown[:5])}"] if unknown else []
        )
        raise UserError(f"--prompts {prompts_file}: {'; '.join(problems)}")
    return [mapping[name] for name in names]


def _summary_lines(report: dict) -> list[str]:  # type: ignore[type-arg]
    gates = {gate["metric"]: gate for gate in report["gates"]}
    lines = [
        f"{len(report['videos'])} videos, preset {report['preset']}: {'PASSED' if report['passed'] else 'FAILED'}"
    ]
    for key, metric in report["metrics"].items():
        value = f"{metric['mean']:.4g}" if metric["mean"] is not None else metric["status"]
        gate = gates.get(key)
        verdict = f"  [{gate['reason']}: {'pass' if gate['passed'] else 'FAIL'}]" if gate else ""
        lines.append(f"  {key:<38} {value:>14}  {metric['units']}{verdict}")
    return lines


@app.command("eval-videos")
def eval_videos(
    directory: Annotated[Path, typer.Argument(help="Folder of videos to evaluate (not recursive).")],
    prompts: Annotated[
        Path | None,
        typer.Option(
            "--prompts", help='JSON object {"<file name>": "<prompt>"}: enables text-video alignment.'
        ),
    ] = None,
    reference: Annotated[
        Path | None, typer.Option("--reference", help="Folder of reference videos for the Fréchet distance.")
    ] = None,
    text_video_model: Annotated[
        Path | None,
        typer.Option("--text-video-model", help="Local CLIP / X-CLIP folder (save_pretrained layout)."),
    ] = None,
    table: Annotated[
        Path | None, typer.Option("--table", help="Also write the per-metric table as PNG.")
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object instead of a summary.")
    ] = False,
    profile: ProfileOption = None,
) -> None:
    """Score videos (VBench-style metrics, BRISQUE, Fréchet distance, CLIP alignment) and apply the
    gates calibrated for the profile. Exit 0 whenever the evaluation ran; "passed" holds the verdict."""
    from evaluation.text_video_alignment import TextVideoModelError
    from evaluation.video_eval_config import VideoEvalConfig
    from evaluation.video_metrics import VideoInputError, evaluate_videos
    from evaluation.video_metrics_table import render_metrics_table

    if table is not None:
        output_file(table, "--table", ".png")
    videos = _videos_in(directory, "DIR")
    prompt_list = _prompts_for(videos, prompts) if prompts is not None else None
    references = _videos_in(reference, "--reference") if reference is not None else None
    if text_video_model is not None and not text_video_model.is_dir():
        raise UserError(f"--text-video-model {text_video_model}: not a folder")
    config = platform_config(None, profile, None).config_for(
        VideoEvalConfig, text_video_model=str(text_video_model) if text_video_model else None
    )
    try:
        report = evaluate_videos(videos, prompt_list, references, config)
    except (VideoInputError, TextVideoModelError) as error:
        raise UserError(str(error)) from error
    if table is not None:
        render_metrics_table(report, table)
    result = report.to_dict() | {
        "directory": str(directory),
        "reference": str(reference) if reference else None,
    }
    if json_out:
        typer.echo(json.dumps(result, indent=2, allow_nan=False))
    else:
        typer.echo("\n".join(_summary_lines(result)))
