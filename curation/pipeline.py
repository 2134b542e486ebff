"""The curation chain as functions over tables: raw videos → clips → signals → dedup → tiers.

Each stage reads and writes Parquet through `media.tables` (atomic, schema-checked); the
Dagster assets and `videofoundry curate` call these same functions. The per-video stages (probe,
decode, shot detection → `clips`; signals → `clip_signals`) stream through
`curation.execution.run_stage` (Ray Data by default): the workers write the partitions, the driver
never holds their rows. Reruns are idempotent: ids derive from content, each batch's partitions
are replaced whole, and a batch's quarantine partition is replaced per stage (its part files are
named after the stage that wrote them).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.clip_signals import ClipSignalStream
from curation.config import TIER_NAMES, CurationConfig
from curation.decode import BadVideoError, DecodedVideo, decode_for_analysis, probe_video
from curation.dedup_store import dedup_batch
from curation.embedding import load_embedder
from curation.execution import (
    VIDEO_KIND,
    VIDEO_SCHEMA,
    ProgressFn,
    Row,
    StageOutput,
    StageSummary,
    run_stage,
    run_task,
    transport_block,
)
from curation.scenes import Clip, cut_clips
from curation.schemas import CLIP_SIGNALS_SCHEMA, CLIPS_SCHEMA, QUARANTINE_SCHEMA
from curation.tiers import decide_tiers, draw_funnel, funnel, sft_candidates, tier_membership
from media.image_quality import load_aesthetic_scorer
from media.tables import (
    part_files,
    partitions,
    publish_folder,
    read_table,
    staging_folder,
    table_path,
    write_table,
)

QUARANTINE_STAGES = {"clips": ("ingest", "probe", "decode", "clips"), "signals": ("signals",)}
"""The quarantine `stage` values each streaming stage writes (its part files are named after it)."""

CLIPS_OUTPUTS = {"clip": CLIPS_SCHEMA, "quarantine": QUARANTINE_SCHEMA, VIDEO_KIND: VIDEO_SCHEMA}
SIGNALS_OUTPUTS = {"signal": CLIP_SIGNALS_SCHEMA, "quarantine": QUARANTINE_SCHEMA, VIDEO_KIND: VIDEO_SCHEMA}


def _video_done(path: str, rows: list[Row], kind: str) -> Row:
    """The progress row of one finished video: its `kind` rows and quarantine rows (`VIDEO_SCHEMA`)."""
    kinds = [row_kind for row_kind, _ in rows]
    return (VIDEO_KIND, {"path": path, "clips": kinds.count(kind), "quarantined": kinds.count("quarantine")})


def _quarantine_row(
    path: str, sha256: str | None, batch: str, stage: str, reason: str, **frames: int | None
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


def _truncation_row(
    path: str, sha256: str, batch: str, video: DecodedVideo, max_frames: int
) -> dict[str, Any]:
    """The quarantine row of a video's tail past `max_frames` (end_frame null when the length is unknown)."""
    total = "?" if video.source_frames is None else str(video.source_frames)
    reason = (
        f"truncated: frames {max_frames}-{total} are past the max_frames cap of {max_frames} and were not "
        f"curated (the last shot is cut at the cap)"
    )
    return _quarantine_row(
        path, sha256, batch, "decode", reason, start_frame=max_frames, end_frame=video.source_frames
    )


class CutClips:
    """UDF of stage `clips`: probe, decode and cut each raw video of a batch of manifest rows."""

    def __init__(self, config_json: str) -> None:
        self.config = CurationConfig.model_validate_json(config_json)

    def __call__(self, items: pa.Table) -> pa.Table:
        rows: list[Row] = []
        for item in items.to_pylist():
            video_rows = self._video(item)
            rows += video_rows
            rows.append(_video_done(item["path"], video_rows, "clip"))
        return transport_block(CLIPS_OUTPUTS, rows)

    def _video(self, item: dict[str, Any]) -> list[Row]:
        config = self.config
        path, sha256, batch = item["path"], item["sha256"], item["batch"]
        if item.get("skip_reason") is not None:  # ingest could not take it (not a file, unreadable …)
            return [("quarantine", _quarantine_row(path, sha256, batch, "ingest", item["skip_reason"]))]
        if item["duplicate_of"] is not None:
            reason = f"same content as {item['duplicate_of']} (sha256 {sha256[:12]})"
            return [("quarantine", _quarantine_row(path, sha256, batch, "ingest", reason))]
        try:
            info = probe_video(Path(path), config.probe)
            video = decode_for_analysis(
                info, config.signals.analysis_height, max_frames=config.probe.max_frames
            )
            clips, dropped = cut_clips(video, sha256, config.scenes)
        except BadVideoError as error:
            return [("quarantine", _quarantine_row(path, sha256, batch, error.stage, error.reason))]
        rows: list[Row] = [
            ("clip", {**dataclasses.asdict(clip), "batch": batch, "frame_count": clip.frame_count})
            for clip in clips
        ]
        rows += [
            (
                "quarantine",
                _quarantine_row(
                    path, sha256, batch, "clips", d.reason, start_frame=d.start_frame, end_frame=d.end_frame
                ),
            )
            for d in dropped
        ]
        if video.truncated:  # the tail past the frame cap is lost: say so, with its frame range
            rows.append(("quarantine", _truncation_row(path, sha256, batch, video, config.probe.max_frames)))
        if not clips:
            rows.append(
                (
                    "quarantine",
                    _quarantine_row(path, sha256, batch, "clips", "no shot long enough for a clip"),
                )
            )
        return rows


def make_clips(
    raw_videos: pa.Table,
    batch: str,
    config: CurationConfig,
    clips_path: Path,
    quarantine_path: Path,
    progress: ProgressFn | None = None,
) -> StageSummary:
    """Write the `clips` partition at `clips_path` and this stage's quarantine rows (stages
    ingest/probe/decode/clips) into the partition at `quarantine_path`, from the workers.

    Entries ingest skipped are quarantined at stage `ingest` with their reason. Files with the
    same content hash are curated once: the first path (sorted) is used, the others are
    quarantined at stage `ingest` naming it. The driver holds the manifest (one small dict per raw
    video), never a clip row. `progress` is called once per raw video as its rows are written
    (`curation.execution.VideoDone`, `clips` = its clips).
    """
    items: list[dict[str, Any]] = []
    first_path: dict[str, str] = {}
    manifest = zip(
        raw_videos.column("path").to_pylist(),
        raw_videos.column("sha256").to_pylist(),
        raw_videos.column("skip_reason").to_pylist(),
        strict=True,
    )
    for path, sha256, skip_reason in sorted(manifest, key=lambda row: row[0]):
        duplicate_of = first_path.get(sha256) if skip_reason is None else None
        items.append(
            {
                "path": path,
                "sha256": sha256,
                "batch": batch,
                "duplicate_of": duplicate_of,
                "skip_reason": skip_reason,
            }
        )
        if skip_reason is None:
            first_path.setdefault(sha256, path)
    _split_single_file_quarantine(quarantine_path)
    outputs = {
        "clip": StageOutput(clips_path, CLIPS_SCHEMA),
        "quarantine": StageOutput(quarantine_path, QUARANTINE_SCHEMA, shared=True),
    }
    kwargs = {"config_json": config.model_dump_json()}
    return run_stage("clips", items, CutClips, kwargs, outputs, config.execution, progress)


class ClipSignals:
    """UDF of stage `clip_signals`: one decode per source video, the signals of each of its clips.

    The decode covers the frames from the first clip's start to the last clip's end only, seeking
    to the keyframe before it (from an even frame: see `ClipSignalStream`).

    Built once per Ray actor: the embedding network and the aesthetic scorer load in the
    constructor (on the actor's GPU when it has one), not per clip.
    """

    def __init__(self, config_json: str, cheap_only: bool) -> None:
        self.config = CurationConfig.model_validate_json(config_json)
        self.cheap_only = cheap_only
        if not cheap_only:
            load_embedder(self.config.signals.embedding_weights)
            load_aesthetic_scorer(self.config.signals.aesthetic_model)

    def __call__(self, items: pa.Table) -> pa.Table:
        rows: list[Row] = []
        for item in items.to_pylist():
            clips = pq.ParquetFile(item["path"]).read_row_group(item["row_group"]).to_pylist()
            by_video: dict[str, list[dict[str, Any]]] = {}
            for clip in clips:
                by_video.setdefault(clip["source_path"], []).append(clip)
            for path, video_clips in by_video.items():
                video_rows = self._video(video_clips)
                rows += video_rows
                rows.append(_video_done(path, video_rows, "signal"))
        return transport_block(SIGNALS_OUTPUTS, rows)

    def _video(self, video_clips: list[dict[str, Any]]) -> list[Row]:
        config = self.config
        first = video_clips[0]
        path = first["source_path"]
        fields = {f.name for f in dataclasses.fields(Clip)}
        clips = [Clip(**{k: v for k, v in c.items() if k in fields}) for c in video_clips]
        start = min(c.start_frame for c in clips)
        start -= start % 2
        span = (start, max(c.end_frame for c in clips))
        stream = ClipSignalStream(clips, config.signals, self.cheap_only, first_frame=start)
        try:
            info = probe_video(Path(path), config.probe)
            video = decode_for_analysis(
                info,
                config.signals.analysis_height,
                max_frames=config.probe.max_frames,
                on_frame=stream,
                frames_range=span,
            )
        except BadVideoError as error:
            row = _quarantine_row(path, first["source_sha256"], first["batch"], "signals", error.reason)
            return [("quarantine", row)]
        done, unfinished = stream.finish()
        rows: list[Row] = [("signal", row) for row in done]
        for clip in unfinished:  # the video changed since its clips were cut
            decoded = video.first_frame + video.frame_count
            reason = f"clip ends at frame {clip.end_frame}, past the {decoded} frames decoded"
            row = _quarantine_row(
                path,
                clip.source_sha256,
                first["batch"],
                "signals",
                reason,
                start_frame=clip.start_frame,
                end_frame=clip.end_frame,
            )
            rows.append(("quarantine", row))
        return rows


def compute_signals(
    clips_path: Path,
    config: CurationConfig,
    signals_path: Path,
    quarantine_path: Path,
    cheap_only: bool = False,
    progress: ProgressFn | None = None,
) -> StageSummary:
    """Write the `clip_signals` partition of the `clips` partition at `clips_path`, and this stage's
    quarantine rows (stage signals), from the workers: one work item per row group of clips.

    The clips stage writes each video's clips as one row group, so each video is decoded once. The
    driver reads Parquet footers only. `progress` is called once per source video as its rows are
    written (`curation.execution.VideoDone`, `clips` = its signal rows).
    """
    items = [
        {"path": str(part), "row_group": index}
        for part in part_files(clips_path)
        for index in range(pq.ParquetFile(part).num_row_groups)
    ]
    _split_single_file_quarantine(quarantine_path)
    outputs = {
        "signal": StageOutput(signals_path, CLIP_SIGNALS_SCHEMA),
        "quarantine": StageOutput(quarantine_path, QUARANTINE_SCHEMA, shared=True),
    }
    kwargs = {"config_json": config.model_dump_json(), "cheap_only": cheap_only}
    return run_stage("signals", items, ClipSignals, kwargs, outputs, config.execution, progress)


def _split_single_file_quarantine(path: Path) -> None:
    """Turn a quarantine partition written as one file (before stages streamed) into part files
    named after the stage that wrote each row, so each stage can replace its own."""
    if not path.is_file():
        return
    table = read_table(path, QUARANTINE_SCHEMA)
    staged = staging_folder(path)
    for stage, values in QUARANTINE_STAGES.items():
        rows = table.filter(pc.is_in(table.column("stage"), pa.array(values)))
        write_table(rows, staged / f"{stage}-single-file.parquet", QUARANTINE_SCHEMA)
    publish_folder(staged, path)


def count_rows(path: Path) -> int:
    """Rows of a table or partition, from the Parquet footers (no row is read)."""
    if path.is_file() or path.suffix == ".parquet":
        return sum(pq.ParquetFile(part).metadata.num_rows for part in part_files(path))
    return sum(count_rows(partition) for partition in partitions(path))


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
    progress: ProgressFn | None = None,
) -> CurationResult:
    """Run the whole chain for one batch and write every table (outside Dagster, same functions).

    `progress` is called once per raw video when the clips stage has written its rows, then once
    per video with clips when the signals stage has (`VideoDone.stage` says which).
    """
    quarantine_path = quarantine_dir / f"{batch}.parquet"
    paths = {
        "clips": table_path(tables_dir, "clips", batch),
        "clip_signals": table_path(tables_dir, "clip_signals", batch),
    }
    make_clips(raw_videos, batch, config, paths["clips"], quarantine_path, progress)
    compute_signals(paths["clips"], config, paths["clip_signals"], quarantine_path, progress=progress)
    paths["quarantine"] = quarantine_path
    written, funnel_rows, png, counts = run_task(
        "curation-dedup-tiers", dedup_and_tiers, config.execution, paths["clip_signals"], batch, tables_dir,
        reports_dir, config,
    )  # fmt: skip
    return CurationResult({**paths, **written}, funnel_rows, png, count_rows(quarantine_path), counts)


def dedup_and_tiers(
    signals_path: Path, batch: str, tables_dir: Path, reports_dir: Path, config: CurationConfig
) -> tuple[dict[str, Path], list[tuple[str, int]], Path, dict[str, int]]:
    """Dedup the batch's clips against every earlier batch, then decide tiers and SFT candidates;
    writes those tables and the funnel chart. Returns their paths, the funnel, the chart and the
    clips per tier: the only stage that reads whole columns, so `curate` runs it as one task
    (`curation.execution.run_task`) rather than in the driver."""
    from curation.schemas import (
        DEDUPED_CLIPS_SCHEMA,
        SFT_CANDIDATES_SCHEMA,
        TIER_DECISIONS_SCHEMA,
        TIERS_SCHEMA,
    )

    signals = read_table(signals_path, CLIP_SIGNALS_SCHEMA).sort_by("clip_id")
    deduped = dedup_batch(signals, batch, tables_dir, config.dedup)  # against every earlier batch
    paths = {
        "deduped_clips": write_table(deduped, table_path(tables_dir, "deduped_clips"), DEDUPED_CLIPS_SCHEMA)
    }
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
    return paths, result.funnel, png, counts
