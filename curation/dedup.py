"""Near-duplicate removal on clip embeddings, then k-means concept clusters and balancing weights.

Two clips are duplicates when the cosine distance of their embeddings is ≤ `max_cosine_distance`
or their perceptual hashes differ in ≤ `max_hash_distance` bits. Duplicate pairs are joined
transitively (union-find) into groups; each group keeps its best clip (highest aesthetic, then
sharpness, then longest, then smallest clip_id for determinism) and records who duplicates whom.
Kept clips are clustered with k-means (cosine geometry: unit vectors); a clip's balancing weight
is N / (k · size of its cluster), clipped and renormalised to mean 1, so rare concepts are drawn
as often as common ones.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
from sklearn.cluster import KMeans

from curation.config import DedupConfig
from curation.embedding import hash_distance
from curation.schemas import DEDUPED_CLIPS_SCHEMA


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def dedup_clips(signals: pa.Table, config: DedupConfig) -> pa.Table:
    """The `deduped_clips` table (schema `DEDUPED_CLIPS_SCHEMA`) from `clip_signals` rows.

    Clips without an embedding (cheap-only signal runs) are kept alone in their own group.
    """
    rows: list[dict[str, Any]] = signals.select(
        ["clip_id", "embedding", "phash", "aesthetic", "sharpness", "duration_s"]
    ).to_pylist()
    rows.sort(key=lambda r: r["clip_id"])
    n = len(rows)
    if n == 0:
        return DEDUPED_CLIPS_SCHEMA.empty_table()
    has_embedding = np.array([r["embedding"] is not None for r in rows])
    dim = next((len(r["embedding"]) for r in rows if r["embedding"] is not None), 1)
    vectors = np.stack([np.asarray(r["embedding"] or np.zeros(dim), dtype=np.float32) for r in rows])
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    distance = 1.0 - vectors @ vectors.T  # (N, N) cosine distance
    distance[~has_embedding, :] = 2.0
    distance[:, ~has_embedding] = 2.0
    np.fill_diagonal(distance, np.inf)
    parent = list(range(n))
    for i in range(n):
        for j in range(i + 1, n):
            close = distance[i, j] <= config.max_cosine_distance
            same_hash = hash_distance(rows[i]["phash"], rows[j]["phash"]) <= config.max_hash_distance
            if close or same_hash:
                parent[_find(parent, i)] = _find(parent, j)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(_find(parent, i), []).append(i)

    def quality(i: int) -> tuple[float, float, float, str]:
        r = rows[i]
        return (r["aesthetic"] or 0.0, r["sharpness"] or 0.0, r["duration_s"] or 0.0, _negated(r["clip_id"]))

    keeper_of = {}
    for members in groups.values():
        keeper = max(members, key=quality)
        for i in members:
            keeper_of[i] = keeper
    kept = [i for i in range(n) if keeper_of[i] == i]
    clusters, weights = _balance(vectors[kept], has_embedding[kept], config)
    cluster_of = dict(zip(kept, clusters, strict=True))
    weight_of = dict(zip(kept, weights, strict=True))
    nearest = distance.min(axis=1)
    table = {
        "clip_id": [r["clip_id"] for r in rows],
        "keep": [keeper_of[i] == i for i in range(n)],
        "duplicate_of": [None if keeper_of[i] == i else rows[keeper_of[i]]["clip_id"] for i in range(n)],
        "group_id": [rows[keeper_of[i]]["clip_id"] for i in range(n)],
        "group_size": [len(groups[_find(parent, i)]) for i in range(n)],
        "nearest_distance": [float(nearest[i]) if np.isfinite(nearest[i]) else None for i in range(n)],
        "cluster": [cluster_of.get(i) for i in range(n)],
        "balance_weight": [weight_of.get(i) for i in range(n)],
    }
    return pa.table(table, schema=DEDUPED_CLIPS_SCHEMA)


def _negated(text: str) -> str:
    """Sort key that prefers the *smallest* clip_id under `max`."""
    return "".join(chr(0x10FFFF - ord(ch)) for ch in text)


def _balance(
    vectors: np.ndarray, valid: np.ndarray, config: DedupConfig
) -> tuple[list[int | None], list[float | None]]:
    """k-means cluster and balancing weight per kept clip (None for clips without embedding)."""
    index = np.flatnonzero(valid)
    clusters: list[int | None] = [None] * len(vectors)
    weights: list[float | None] = [1.0 if not v else None for v in valid]
    if len(index) == 0:
        return clusters, weights
    k = max(1, min(config.n_clusters, len(index) // 3 or 1))
    labels = KMeans(n_clusters=k, n_init=4, random_state=config.seed).fit_predict(vectors[index])
    sizes = np.bincount(labels, minlength=k)
    raw = len(index) / (k * sizes[labels])
    raw = np.minimum(raw, config.max_balance_weight)
    raw = raw / raw.mean()
    for position, i in enumerate(index):
        clusters[i] = int(labels[position])
        weights[i] = float(raw[position])
    return clusters, weights
