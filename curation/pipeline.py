"""The curation chain as functions over tables: raw videos → clips → signals → dedup → tiers.

Each stage reads and writes Parquet through `media.tables` (atomic, schema-checked); the
Dagster assets and `videofoundry curate` call these same functions. Per-video work (probe,
decode, shot detection, signals) runs through `curation.execution.run_tasks` (Ray Data by default).
Reruns are idempotent: ids derive from content, each batch's tables are rewritten whole, and the
quarantine table is replaced per (batch, stage).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pyarrow as pa

from curation.clip_signals import clip_signal_row
from curation.config import TIER_NAMES, CurationConfig
from curation.decode import BadVideoError, decode_for_analysis, probe_video
from curation.dedup_store import dedup_batch
from curation.execution import output, run_tasks
from curation.scenes import Clip, cut_clips
from curation.schemas import CLIP_SIGNALS_SCHEMA, CLIPS_SCHEMA, QUARANTINE_SCHEMA
from curation.tiers import decide_tiers, draw_funnel, funnel, sft_candidates, tier_membership
from media.tables import read_table, table_path, write_table


def _quarantine_row(
    path: str, sha256: str | None, batch: str, stage: str, reason: str, **frames: int
) -> dict[str, Any]:
    return {
        "path": path,
        "sha256": sha256,
        "batch": batch,
        "stage": stage,
        "reason": reason,
        "start_frame": frames.get("start_frame"),
        "end_frame": frames.get("end_frame"),
    }


def _clips_task(item: dict[str, Any]) -> list[dict[str, str]]:
    """Probe, decode and cut one raw video (Ray task)."""
    config = CurationConfig.model_validate_json(item["config"])
    path, sha256, batch = item["path"], item["sha256"], item["batch"]
    try:
        info = probe_video(Path(path), config.probe)
        video = decode_for_analysis(info, config.signals.analysis_height, 3600.0, config.probe.max_frames)
        clips, dropped = cut_clips(video, sha256, config.scenes)
    except BadVideoError as error:
        return [output("quarantine", _quarantine_row(path, sha256, batch, error.stage, error.reason))]
    rows = [output("clip", {**dataclasses.asdict(clip), "batch": batch}) for clip in clips]
    rows += [
        output(
            "quarantine",
            _quarantine_row(
                path, sha256, batch, "clips", d.reason, start_frame=d.start_frame, end_frame=d.end_frame
            ),
        )
        for d in dropped
    ]
    if not clips:
        rows.append(
            output(
                "quarantine", _quarantine_row(path, sha256, batch, "clips", "no shot long enough for a clip")
            )
        )
    return rows


def make_clips(raw_videos: pa.Table, batch: str, config: CurationConfig) -> tuple[pa.Table, pa.Table]:
    """(`clips`, `quarantine` rows of stages ingest/probe/decode/clips) for one batch of raw videos.

    Files with the same content hash are curated once: the first path (sorted) is used, the
    others are quarantined at stage `ingest` naming it.
    """
    items: list[dict[str, Any]] = []
    quarantine: list[dict[str, Any]] = []
    first_path: dict[str, str] = {}
    for row in sorted(raw_videos.to_pylist(), key=lambda r: r["path"]):
        if row["sha256"] in first_path:
            reason = f"same content as {first_path[row['sha256']]} (sha256 {row['sha256'][:12]})"
            quarantine.append(_quarantine_row(row["path"], row["sha256"], batch, "ingest", reason))
            continue
        first_path[row["sha256"]] = row["path"]
        items.append(
            {"path": row["path"], "sha256": row["sha256"], "batch": batch, "config": config.model_dump_json()}
        )
    results = run_tasks(_clips_task, items, config.execution)
    clips = sorted(results.get("clip", []), key=lambda r: (r["source_path"], r["start_frame"]))
    for clip in clips:
        clip["frame_count"] = clip["end_frame"] - clip["start_frame"]
    quarantine += results.get("quarantine", [])
    return (
        pa.Table.from_pylist(clips, schema=CLIPS_SCHEMA),
        pa.Table.from_pylist(sorted(quarantine, key=_quarantine_key), schema=QUARANTINE_SCHEMA),
    )


def _quarantine_key(row: dict[str, Any]) -> tuple[str, str, int]:
    return (row["path"], row["stage"], row["start_frame"] or 0)


def _signals_task(item: dict[str, Any]) -> list[dict[str, str]]:
    """Decode one raw video once and compute the signals of all its clips (Ray task)."""
    config = CurationConfig.model_validate_json(item["config"])
    path = item["path"]
    clip_fields = {f.name for f in dataclasses.fields(Clip)}
    clips = [Clip(**{k: v for k, v in c.items() if k in clip_fields}) for c in item["clips"]]
    try:
        info = probe_video(Path(path), config.probe)
        video = decode_for_analysis(
            info, config.signals.analysis_height, config.signals.full_res_every_s, config.probe.max_frames
        )
    except BadVideoError as error:
        return [
            output(
                "quarantine", _quarantine_row(path, item["sha256"], item["batch"], "signals", error.reason)
            )
        ]
    return [
        output("signal", clip_signal_row(video, clip, config.signals, item["cheap_only"])) for clip in clips
    ]


def compute_signals(
    clips: pa.Table, config: CurationConfig, cheap_only: bool = False
) -> tuple[pa.Table, pa.Table]:
    """(`clip_signals`, `quarantine` rows of stage signals): one decode per source video."""
    by_video: dict[str, list[dict[str, Any]]] = {}
    for clip in clips.to_pylist():
        by_video.setdefault(clip["source_path"], []).append(clip)
    items = [
        {
            "path": path,
            "sha256": video_clips[0]["source_sha256"],
            "batch": video_clips[0]["batch"],
            "clips": video_clips,
            "cheap_only": cheap_only,
            "config": config.model_dump_json(),
        }
        for path, video_clips in sorted(by_video.items())
    ]
    results = run_tasks(_signals_task, items, config.execution)
    signals = sorted(results.get("signal", []), key=lambda r: r["clip_id"])
    return (
        pa.Table.from_pylist(signals, schema=CLIP_SIGNALS_SCHEMA),
        pa.Table.from_pylist(
            sorted(results.get("quarantine", []), key=_quarantine_key), schema=QUARANTINE_SCHEMA
        ),
    )


def upsert_quarantine(path: Path, rows: pa.Table, stages: set[str]) -> pa.Table:
    """Replace the rows of `stages` in the quarantine table at `path` by `rows` (idempotent)."""
    kept: list[dict[str, Any]] = []
    if path.exists():
        kept = [r for r in read_table(path).to_pylist() if r["stage"] not in stages]
    merged = sorted(kept + rows.to_pylist(), key=_quarantine_key)
    table = pa.Table.from_pylist(merged, schema=QUARANTINE_SCHEMA)
    write_table(table, path, QUARANTINE_SCHEMA)
    return table


@dataclasses.dataclass
class TierOutputs:
    """Everything the `tiers` stage produces."""

    decisions: pa.Table
    membership: pa.Table
    sft: pa.Table
    funnel: list[tuple[str, int]]


def make_tiers(signals: pa.Table, deduped: pa.Table, config: CurationConfig) -> TierOutputs:
    """Decisions for kept clips, tier membership, SFT candidates and the funnel counts."""
    kept = {r["clip_id"] for r in deduped.to_pylist() if r["keep"]}
    decisions = decide_tiers(signals, kept, config.tiers)
    membership = tier_membership(decisions)
    return TierOutputs(
        decisions=decisions,
        membership=membership,
        sft=sft_candidates(signals, membership, config.sft),
        funnel=funnel(signals.num_rows, len(kept), decisions),
    )


@dataclasses.dataclass
class CurationResult:
    """Paths and counts of one `curate` run."""

    tables: dict[str, Path]
    funnel: list[tuple[str, int]]
    funnel_png: Path
    quarantined: int
    tier_counts: dict[str, int]


def curate(
    raw_videos: pa.Table,
    batch: str,
    tables_dir: Path,
    quarantine_dir: Path,
    reports_dir: Path,
    config: CurationConfig,
) -> CurationResult:
    """Run the whole chain for one batch and write every table (outside Dagster, same functions)."""
    from curation.schemas import (
        DEDUPED_CLIPS_SCHEMA,
        SFT_CANDIDATES_SCHEMA,
        TIER_DECISIONS_SCHEMA,
        TIERS_SCHEMA,
    )

    quarantine_path = quarantine_dir / f"{batch}.parquet"
    clips, clip_quarantine = make_clips(raw_videos, batch, config)
    paths = {"clips": write_table(clips, table_path(tables_dir, "clips", batch), CLIPS_SCHEMA)}
    upsert_quarantine(quarantine_path, clip_quarantine, {"ingest", "probe", "decode", "clips"})
    signals, signal_quarantine = compute_signals(clips, config)
    paths["clip_signals"] = write_table(
        signals, table_path(tables_dir, "clip_signals", batch), CLIP_SIGNALS_SCHEMA
    )
    quarantine = upsert_quarantine(quarantine_path, signal_quarantine, {"signals"})
    paths["quarantine"] = quarantine_path
    deduped = dedup_batch(signals, batch, tables_dir, config.dedup)  # against every earlier batch
    paths["deduped_clips"] = write_table(
        deduped, table_path(tables_dir, "deduped_clips"), DEDUPED_CLIPS_SCHEMA
    )
    result = make_tiers(signals, deduped, config)
    paths["tier_decisions"] = write_table(
        result.decisions, table_path(tables_dir, "tier_decisions"), TIER_DECISIONS_SCHEMA
    )
    paths["tiers"] = write_table(result.membership, table_path(tables_dir, "tiers"), TIERS_SCHEMA)
    paths["sft_candidates"] = write_table(
        result.sft, table_path(tables_dir, "sft_candidates"), SFT_CANDIDATES_SCHEMA
    )
    png = draw_funnel(result.funnel, reports_dir / "curation_funnel.png")
    counts = {name: sum(result.membership.column(f"tier_{name}").to_pylist()) for name in TIER_NAMES}
    return CurationResult(paths, result.funnel, png, quarantine.num_rows, counts)
