"""Near-duplicate groups of clips (best clip kept), then concept clusters and balancing weights.

Two clips are duplicates when the cosine distance of their embeddings is ≤ `max_cosine_distance`
or their perceptual hashes differ in ≤ `max_hash_distance` bits. Pairs come from faiss range
searches (`curation.near_duplicates`: exact for small N, IVF beyond), never an N × N matrix, and are
joined transitively into groups (connected components). Each group keeps its best clip (highest
aesthetic, then sharpness, then longest, then smallest clip_id for determinism) and records who
duplicates whom. Kept clips are clustered with spherical k-means (`curation.balance`); a clip's
balancing weight evens out concept clusters.

`dedup_clips` dedups a whole signals table at once; `curation.dedup_store.dedup_batch` adds one
batch to the persisted embeddings of earlier batches and dedups it against them incrementally. Both
build the table with `deduped_table` from the same pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curation.balance import balance_weights
from curation.config import DedupConfig
from curation.near_duplicates import (
    EXACT_MAX_ROWS,
    check_embeddings,
    check_max_distance,
    components,
    embedding_pairs,
    hash_codes,
    hash_pairs,
)
from curation.schemas import DEDUPED_CLIPS_SCHEMA

SIGNAL_COLUMNS = ["clip_id", "embedding", "phash", "aesthetic", "sharpness", "duration_s"]


def duplicate_groups(
    embeddings: np.ndarray, max_distance: float, *, exact_max_rows: int = EXACT_MAX_ROWS
) -> np.ndarray:
    """(N,) int64 group of each row of `embeddings` (N, D) float32: rows within `max_distance`
    cosine distance share a group, transitively (connected components of the "within" graph).

    Groups are numbered 0, 1, … in order of their first row (row 0 is in group 0); a row with no
    near-duplicate is alone in its group; N = 0 gives an empty array. Exact (flat inner-product
    range search) for N ≤ `exact_max_rows`, IVF beyond (`curation.near_duplicates`).
    `EmbeddingInputError` (a ValueError) for a non-array, non-2-D, non-float32, non-finite or
    all-zero-row input, or `max_distance` outside [0, 2].
    """
    max_distance = check_max_distance(max_distance)
    unit = check_embeddings(embeddings)
    if len(unit) == 0:
        return np.empty(0, np.int64)
    rows, cols, _ = embedding_pairs(unit, unit, max_distance, exact_max_rows)
    return components(len(unit), rows, cols)


@dataclass
class ClipVectors:
    """The dedup inputs of N clips sorted by clip_id, as arrays.

    `embeddings` (M, D) float32 L2-normalised rows of the M clips that have one, `has_embedding`
    (N,) bool marks them (in order); `codes` (N, 8) uint8 pHashes; quality columns (N,) float64
    with missing values as 0.
    """

    clip_ids: pa.Array
    embeddings: np.ndarray
    has_embedding: np.ndarray
    codes: np.ndarray
    aesthetic: np.ndarray
    sharpness: np.ndarray
    duration_s: np.ndarray

    @classmethod
    def from_table(cls, table: pa.Table) -> ClipVectors:
        """From a table with `SIGNAL_COLUMNS` (embedding: list<float32>, null for cheap-only rows);
        repeated clip_ids count once."""
        # Stable sort: of rows sharing a clip_id (the same bytes ingested in two batches: one
        # clip), the first in table order is kept.
        table = table.select(SIGNAL_COLUMNS).take(pc.sort_indices(table, [("clip_id", "ascending")]))
        sorted_ids = table.column("clip_id").combine_chunks()
        first = np.ones(len(sorted_ids), bool)
        if len(sorted_ids) > 1:
            first[1:] = pc.not_equal(sorted_ids[1:], sorted_ids[:-1]).to_numpy(zero_copy_only=False)
        table = table.filter(pa.array(first))
        ids = table.column("clip_id").combine_chunks()
        column = table.column("embedding").combine_chunks()
        has_embedding = column.is_valid().to_numpy(zero_copy_only=False)
        present = column.filter(column.is_valid())
        lengths = pc.list_value_length(present).to_numpy(zero_copy_only=False)
        if len(lengths) and (lengths.min() != lengths.max() or lengths[0] == 0):
            raise ValueError(f"clip embeddings have differing or zero lengths {sorted(set(lengths))[:4]}")
        dim = int(lengths[0]) if len(lengths) else 1
        flat = present.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        embeddings = check_embeddings(flat.reshape(len(present), dim), "clip embeddings")

        def numbers(name: str) -> np.ndarray:
            return pc.fill_null(table.column(name), 0.0).to_numpy().astype(np.float64)

        return cls(
            clip_ids=ids,
            embeddings=embeddings,
            has_embedding=has_embedding,
            codes=hash_codes(table.column("phash").to_pylist()),
            aesthetic=numbers("aesthetic"),
            sharpness=numbers("sharpness"),
            duration_s=numbers("duration_s"),
        )


@dataclass
class Pairs:
    """Duplicate pairs between clips by position (rows[i], cols[i]), with their cosine distance
    (NaN for pairs found by pHash alone)."""

    rows: np.ndarray
    cols: np.ndarray
    distances: np.ndarray

    @classmethod
    def concat(cls, parts: list[Pairs]) -> Pairs:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("rows", "cols", "distances")))


def find_pairs(clips: ClipVectors, queries: np.ndarray, config: DedupConfig) -> Pairs:
    """Duplicate pairs between the clips at positions `queries` (sorted int64) and all `clips`,
    self-pairs excluded: embedding range search plus pHash multi-hash search."""
    max_distance = check_max_distance(config.max_cosine_distance)
    embedded = np.flatnonzero(clips.has_embedding)  # clip position of each embedding row
    parts = []
    query_rows = np.searchsorted(embedded, queries)
    has_query = np.zeros(len(queries), bool)
    if len(embedded):
        has_query = embedded[np.minimum(query_rows, len(embedded) - 1)] == queries
    if has_query.any():
        queried = clips.embeddings[query_rows[has_query]]
        q, b, d = embedding_pairs(clips.embeddings, queried, max_distance, config.exact_max_rows, config.seed)
        parts.append(Pairs(queries[has_query][q], embedded[b], d))
    q, b = hash_pairs(clips.codes, clips.codes[queries], config.max_hash_distance)
    parts.append(Pairs(queries[q], b, np.full(len(q), np.nan, np.float32)))
    pairs = Pairs.concat(parts)
    other = pairs.rows != pairs.cols
    return Pairs(pairs.rows[other], pairs.cols[other], pairs.distances[other])


def deduped_table(clips: ClipVectors, pairs: Pairs, config: DedupConfig) -> pa.Table:
    """The `deduped_clips` table (schema `DEDUPED_CLIPS_SCHEMA`) of `clips` joined by `pairs`.

    `nearest_distance` is the cosine distance to the nearest clip within `max_cosine_distance`
    (null when no other clip is that close).
    """
    n = len(clips.clip_ids)
    if n == 0:
        return DEDUPED_CLIPS_SCHEMA.empty_table()
    groups = components(n, pairs.rows, pairs.cols)
    # Best first within each group: lexsort's last key is the primary one; position = clip_id order.
    order = np.lexsort((np.arange(n), -clips.duration_s, -clips.sharpness, -clips.aesthetic, groups))
    first = np.r_[True, groups[order][1:] != groups[order][:-1]]
    keeper_of_group = np.empty(int(groups.max()) + 1, np.int64)
    keeper_of_group[groups[order][first]] = order[first]
    keeper = keeper_of_group[groups]
    keep = keeper == np.arange(n)
    nearest = np.full(n, np.inf)
    measured = ~np.isnan(pairs.distances)
    for end in (pairs.rows, pairs.cols):  # incremental pairs are found from one end only
        np.minimum.at(nearest, end[measured], pairs.distances[measured].astype(np.float64))
    kept_embedded = keep[clips.has_embedding]
    clusters, weights = balance_weights(clips.embeddings[kept_embedded], config)
    cluster = np.full(n, -1, np.int64)
    weight = np.where(keep, 1.0, np.nan)  # kept clips without embedding weigh 1
    kept_with_embedding = np.flatnonzero(clips.has_embedding)[kept_embedded]
    cluster[kept_with_embedding] = clusters
    weight[kept_with_embedding] = weights
    keeper_ids = clips.clip_ids.take(pa.array(keeper))
    return pa.table(
        {
            "clip_id": clips.clip_ids,
            "keep": pa.array(keep),
            "duplicate_of": pc.if_else(pa.array(keep), pa.nulls(n, pa.string()), keeper_ids),
            "group_id": keeper_ids,
            "group_size": pa.array(np.bincount(groups)[groups].astype(np.int32)),
            "nearest_distance": pa.array(nearest, mask=~np.isfinite(nearest)),
            "cluster": pa.array(cluster.astype(np.int32), mask=cluster < 0),
            "balance_weight": pa.array(weight, mask=np.isnan(weight)),
        },
        schema=DEDUPED_CLIPS_SCHEMA,
    )


def dedup_clips(signals: pa.Table, config: DedupConfig) -> pa.Table:
    """The `deduped_clips` table (schema `DEDUPED_CLIPS_SCHEMA`) from `clip_signals` rows, all at once.

    Clips without an embedding (cheap-only signal runs) join groups by pHash only.
    """
    if signals.num_rows == 0:
        return DEDUPED_CLIPS_SCHEMA.empty_table()
    clips = ClipVectors.from_table(signals)
    pairs = find_pairs(clips, np.arange(len(clips.clip_ids), dtype=np.int64), config)
    return deduped_table(clips, pairs, config)
