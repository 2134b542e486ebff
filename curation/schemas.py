"""The Parquet tables curation writes under `<workspace>/tables/`, and their schemas.

| table | one row per | key |
|---|---|---|
| `clips/<batch>.parquet` | clip (frame range of a raw video) | clip_id |
| `clip_signals/<batch>.parquet` | clip | clip_id |
| `quarantine/<batch>.parquet` | (raw file, stage) that failed | (sha256 or path, stage) |
| `deduped_clips.parquet` | clip, with its duplicate group and concept cluster | clip_id |
| `tier_decisions.parquet` | (clip, tier, filter) evaluated | (clip_id, tier, filter) |
| `tiers.parquet` | clip in at least the 256p tier | clip_id |
| `sft_candidates.parquet` | clip proposed to raters for SFT | clip_id |

Units: frames are 0-based decode-order indices, ranges half-open; times in seconds; motion in
px/frame at 256p; ratios are fractions of the frame area in [0, 1].
"""

from __future__ import annotations

import pyarrow as pa

from curation.config import TIER_NAMES

CLIPS_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("batch", pa.string(), nullable=False),
        pa.field("source_path", pa.string(), nullable=False),
        pa.field("source_sha256", pa.string(), nullable=False),
        pa.field("shot_index", pa.int32(), nullable=False),
        pa.field("piece_index", pa.int32(), nullable=False),
        pa.field("start_frame", pa.int64(), nullable=False),
        pa.field("end_frame", pa.int64(), nullable=False),
        pa.field("start_time", pa.float64(), nullable=False),
        pa.field("end_time", pa.float64(), nullable=False),
        pa.field("fps", pa.float64(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("frame_count", pa.int64(), nullable=False),
        pa.field("start_frame_sharpest", pa.int64(), nullable=False),
    ]
)

CLIP_SIGNALS_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("fps", pa.float64(), nullable=False),
        pa.field("duration_s", pa.float64(), nullable=False),
        pa.field("motion_mean", pa.float64(), nullable=False),
        pa.field("motion_p95", pa.float64(), nullable=False),
        pa.field("sharpness", pa.float64(), nullable=False),
        pa.field("brisque", pa.float64()),
        pa.field("aesthetic", pa.float64()),
        pa.field("aesthetic_model", pa.string()),
        pa.field("text_area", pa.float64()),
        pa.field("watermark", pa.float64(), nullable=False),
        pa.field("watermark_corner", pa.string()),
        pa.field("border_x0", pa.int32(), nullable=False),
        pa.field("border_y0", pa.int32(), nullable=False),
        pa.field("border_x1", pa.int32(), nullable=False),
        pa.field("border_y1", pa.int32(), nullable=False),
        pa.field("border_ratio", pa.float64(), nullable=False),
        pa.field("phash", pa.string(), nullable=False),
        pa.field("embedding", pa.list_(pa.float32())),
        pa.field("embedding_model", pa.string()),
        *[
            pa.field(f"timing_{name}", pa.float64(), nullable=False)
            for name in (
                "motion",
                "sharpness",
                "borders",
                "watermark",
                "phash",
                "brisque",
                "aesthetic",
                "ocr",
                "embedding",
            )
        ],
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("path", pa.string(), nullable=False),
        pa.field("sha256", pa.string()),
        pa.field("batch", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),  # ingest | probe | decode | clips | signals
        pa.field("reason", pa.string(), nullable=False),
        pa.field("start_frame", pa.int64()),  # for a dropped shot: its range, else null
        pa.field("end_frame", pa.int64()),
    ]
)

DEDUPED_CLIPS_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("keep", pa.bool_(), nullable=False),
        pa.field("duplicate_of", pa.string()),  # the kept clip of its group (null when kept)
        pa.field("group_id", pa.string(), nullable=False),  # clip_id of the group's kept clip
        pa.field("group_size", pa.int32(), nullable=False),
        pa.field("nearest_distance", pa.float64()),  # nearest clip within max_cosine_distance
        pa.field("cluster", pa.int32()),  # k-means concept cluster (kept clips only)
        pa.field("balance_weight", pa.float64()),  # sampling weight, mean 1 over kept clips
    ]
)

TIER_DECISIONS_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("tier", pa.string(), nullable=False),
        pa.field("filter", pa.string(), nullable=False),
        pa.field("order", pa.int32(), nullable=False),  # position of the filter in the tier's sequence
        pa.field("passed", pa.bool_(), nullable=False),
        pa.field("value", pa.float64()),
        pa.field("threshold", pa.float64(), nullable=False),
        pa.field("comparison", pa.string(), nullable=False),  # ">=" or "<="
        pa.field("decisive", pa.bool_(), nullable=False),  # the first failing filter of the clip in the tier
    ]
)

TIERS_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("highest_tier", pa.string(), nullable=False),
        *[pa.field(f"tier_{name}", pa.bool_(), nullable=False) for name in TIER_NAMES],
        pa.field("failed_tier", pa.string()),  # the tier above highest_tier it failed (null: passed 720p)
        pa.field("failed_filter", pa.string()),
    ]
)

SFT_CANDIDATES_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("rank", pa.int32(), nullable=False),
        pa.field("score", pa.float64(), nullable=False),  # aesthetic / 10 × min(1, motion / 2)
        pa.field("status", pa.string(), nullable=False),  # proposed (raters accept/reject in the eval UI)
    ]
)
