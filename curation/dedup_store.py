"""Incremental dedup: each batch is searched against the persisted vectors of every earlier batch.

Two partitioned tables under the tables folder (`media.tables` layout, one partition per batch):

| table | one row per | columns |
|---|---|---|
| `dedup_vectors/<batch>` | clip of the batch | clip_id, embedding (L2-normalised, null without one), phash, aesthetic, sharpness, duration_s |
| `dedup_pairs/<batch>` | duplicate pair found when the batch was added | clip_a (of the batch), clip_b, distance (null: pHash only) |

Adding a batch reads the stored vectors of all batches (old embeddings are read, never recomputed),
builds the search index over them, queries it with the new batch's rows only, and joins the new
pairs with the stored pairs of earlier batches: old-against-old pairs are not searched again.
Re-adding a batch replaces its partitions (idempotent); pairs that name clips no longer stored are
ignored.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.config import DedupConfig
from curation.dedup import SIGNAL_COLUMNS, ClipVectors, Pairs, deduped_table, find_pairs
from media.tables import partitions, read_table, table_path, write_table

DEDUP_VECTORS_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("embedding", pa.list_(pa.float32())),
        pa.field("phash", pa.string(), nullable=False),
        pa.field("aesthetic", pa.float64()),
        pa.field("sharpness", pa.float64()),
        pa.field("duration_s", pa.float64()),
    ]
)
DEDUP_PAIRS_SCHEMA = pa.schema(
    [
        pa.field("clip_a", pa.string(), nullable=False),
        pa.field("clip_b", pa.string(), nullable=False),
        pa.field("distance", pa.float32()),
    ]
)


def dedup_batch(signals: pa.Table, batch: str, tables_dir: Path, config: DedupConfig) -> pa.Table:
    """Store `signals`' dedup vectors as batch `batch`, dedup them against every stored batch, and
    return the `deduped_clips` table over all stored clips (schema `DEDUPED_CLIPS_SCHEMA`).

    `signals` needs the columns `SIGNAL_COLUMNS` of `clip_signals`.
    """
    vectors = signals.select(SIGNAL_COLUMNS).cast(DEDUP_VECTORS_SCHEMA)
    write_table(vectors, table_path(tables_dir, "dedup_vectors", batch), DEDUP_VECTORS_SCHEMA)
    clips = ClipVectors.from_table(read_table(table_path(tables_dir, "dedup_vectors"), DEDUP_VECTORS_SCHEMA))
    new = pc.index_in(vectors.column("clip_id"), value_set=clips.clip_ids).to_numpy(zero_copy_only=False)
    found = find_pairs(clips, np.sort(new.astype(np.int64)), config)
    new_pairs = pa.table(
        {
            "clip_a": clips.clip_ids.take(pa.array(found.rows)),
            "clip_b": clips.clip_ids.take(pa.array(found.cols)),
            "distance": pa.array(found.distances, mask=np.isnan(found.distances)),
        },
        schema=DEDUP_PAIRS_SCHEMA,
    )
    pairs_path = table_path(tables_dir, "dedup_pairs", batch)
    write_table(new_pairs, pairs_path, DEDUP_PAIRS_SCHEMA)
    stored = [_pairs_at(clips, read_table(p, DEDUP_PAIRS_SCHEMA)) for p in partitions(pairs_path.parent)]
    return deduped_table(clips, Pairs.concat(stored), config)


def _pairs_at(clips: ClipVectors, table: pa.Table) -> Pairs:
    """Stored pairs as clip positions; pairs naming a clip that is no longer stored are dropped."""
    a = pc.index_in(table.column("clip_a"), value_set=clips.clip_ids)
    b = pc.index_in(table.column("clip_b"), value_set=clips.clip_ids)
    valid = pc.and_(pc.is_valid(a), pc.is_valid(b)).to_numpy(zero_copy_only=False)
    distances = pc.fill_null(table.column("distance").cast(pa.float32()), np.nan).to_numpy()
    return Pairs(
        pc.fill_null(a, 0).to_numpy().astype(np.int64)[valid],
        pc.fill_null(b, 0).to_numpy().astype(np.int64)[valid],
        distances.astype(np.float32)[valid],
    )
