"""`videofoundry curate INPUT_DIR`: the whole curation chain outside Dagster, printing the funnel."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestration.cli_app import (
    HomeOption,
    LockWaitOption,
    ProfileOption,
    UserError,
    app,
    platform_config,
    user_errors,
)


@app.command()
def curate(
    input_dir: Annotated[
        Path, typer.Argument(help="Folder of raw videos (read recursively); its name is the batch.")
    ],
    home: HomeOption = None,
    profile: ProfileOption = None,
    backend: Annotated[str, typer.Option("--backend", help="ray (default) or local (in-process).")] = "ray",
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="Join a Ray cluster, e.g. ray://head:10001.")
    ] = None,
    wait: LockWaitOption = 0.0,
) -> None:
    """Raw videos → clips → signals → dedup → tiers; writes the tables into the workspace.

    Prints one line per raw video as the clips stage writes its rows (`[clips done/total] name: N
    clips, M quarantined`), then one per video with clips as the signals stage writes its rows
    (`[signals done/total] name: N signal rows, M quarantined`).
    """
    from curation.config import CurationConfig
    from curation.execution import VideoDone
    from curation.ingest import scan_batch, videos_to_curate
    from curation.pipeline import curate as run_curation
    from orchestration.workspace_lock import workspace_lock

    if not input_dir.is_dir():
        raise UserError(f"input folder {input_dir} does not exist or is not a folder")
    if backend not in ("ray", "local"):
        raise UserError(f"unknown backend {backend!r}; choose ray or local")
    platform = platform_config(home, profile, None)
    address = ray_address or platform.compute.ray_address
    execution = {"backend": backend, "ray_address": address, "num_cpus": platform.compute.num_cpus}
    with user_errors(ValueError):
        config = platform.config_for(CurationConfig, execution=execution)
    workspace = platform.workspace.ensure()
    input_dir = input_dir.resolve()
    with workspace_lock(workspace, "videofoundry curate", wait):
        raw = scan_batch(input_dir.parent, input_dir.name, progress=True)
        if videos_to_curate(raw) == 0:
            raise UserError(
                f"no readable video files found under {input_dir} ({raw.num_rows} entries skipped)"
            )
        done = {"clips": 0, "signals": 0}
        total = {"clips": raw.num_rows, "signals": 0}  # signals: the videos that gave clips

        def show(video: VideoDone) -> None:
            done[video.stage] += 1
            if video.stage == "clips":
                total["signals"] += video.clips > 0
                counted = f"{video.clips} clips"
            else:
                counted = f"{video.clips} signal rows"
            typer.echo(
                f"[{video.stage} {done[video.stage]}/{total[video.stage]}] {Path(video.path).name}: "
                f"{counted}, {video.quarantined} quarantined"
            )

        result = run_curation(
            raw, input_dir.name, workspace.tables, workspace.quarantine, workspace.reports, config, show
        )
    typer.echo("funnel (clips remaining):")
    for stage, count in result.funnel:
        typer.echo(f"  {stage:<28} {count}")
    typer.echo(f"tiers: {result.tier_counts}; quarantined rows: {result.quarantined}")
    typer.echo(f"funnel plot: {result.funnel_png}")
    for name, path in result.tables.items():
        typer.echo(f"  {name:<15} {path}")
