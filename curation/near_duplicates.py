"""Near-duplicate pairs at scale: faiss range search on embeddings, multi-hash search on pHashes.

Shapes: N (base) and Q (query) rows, D embedding dimensions.

Embeddings: cosine distance d(a, b) = 1 − â·b̂ on L2-normalised rows, so "within `max_distance`"
is an inner-product range search at radius 1 − max_distance. The index is chosen by the number of
base rows N (`embedding_pairs`):

- N ≤ `exact_max_rows` (default 20,000): faiss `IndexFlatIP` range search, exact; it costs N·Q·D
  multiply-adds, ~10 s for 20,000 × 20,000 × 256 on this loaded two-core machine.
- N > `exact_max_rows`: an inverted-file (IVF) join. faiss spherical k-means puts nlist = 2·√N
  centroids (a power of two, 64–16,384; 8 iterations on 16 rows per centroid); each base row lies
  in its nearest list; each query is compared with the rows of its `IVF_NPROBE` = 8 nearest lists,
  one BLAS matrix product per list (faiss's IVF range search compares row by row, ~20× slower
  here). Near-duplicates (cosine distance ≤ 0.1) almost always share one of those lists; the
  join costs ~8·N²/nlist similarities plus N·nlist for the probes, balanced at nlist ≈ 2·√N.
  Recall and time are measured by `benchmarks/curation_scale.py --only dedup`.

pHashes (64 bits): Hamming distance ≤ r means at least one of r + 1 disjoint bit-chunks agrees
exactly (pigeonhole), so `IndexBinaryMultiHash` with r + 1 chunk tables of 64 // (r + 1) bits finds
every pair exactly, comparing only rows that share a chunk.
"""

from __future__ import annotations

import math

import faiss
import numpy as np

EXACT_MAX_ROWS = 20_000
IVF_NPROBE = 8
QUERY_CHUNK = 16_384  # rows per flat range search call: bounds the size of one result set
JOIN_BLOCK = 8_000_000  # similarities per IVF join matrix product (32 MB)
PROBE_CHUNK = 4_096  # queries per centroid product: bounds its (chunk, nlist) temporaries


class EmbeddingInputError(ValueError):
    """Embeddings are not a finite (N, D) float32 array of non-zero rows, or a threshold is invalid."""


def check_embeddings(embeddings: np.ndarray, name: str = "embeddings") -> np.ndarray:
    """`embeddings` L2-normalised (a contiguous float32 copy); `EmbeddingInputError` if unusable."""
    if not isinstance(embeddings, np.ndarray):
        raise EmbeddingInputError(f"{name} must be a numpy array, got {type(embeddings).__name__}")
    if embeddings.ndim != 2:
        raise EmbeddingInputError(f"{name} must be 2-D (N, D), got shape {embeddings.shape}")
    if embeddings.dtype != np.float32:
        raise EmbeddingInputError(f"{name} must be float32, got {embeddings.dtype}; use .astype(np.float32)")
    if embeddings.shape[1] == 0:
        raise EmbeddingInputError(f"{name} has zero dimensions (shape {embeddings.shape})")
    if not np.isfinite(embeddings).all():
        raise EmbeddingInputError(f"{name} holds NaN or infinite values")
    unit = np.array(embeddings, dtype=np.float32, order="C", copy=True)
    norms = np.linalg.norm(unit, axis=1)
    zero = np.flatnonzero(norms == 0)
    if len(zero):
        raise EmbeddingInputError(
            f"{name} rows {zero[:5].tolist()} are all zero: cosine distance is undefined; drop them first"
        )
    unit /= norms[:, None]
    return unit


def check_max_distance(max_distance: float) -> float:
    """`max_distance` as a float in [0, 2] (the range of cosine distance), else `EmbeddingInputError`."""
    if not isinstance(max_distance, int | float) or not 0.0 <= float(max_distance) <= 2.0:
        raise EmbeddingInputError(f"max_distance must be a cosine distance in [0, 2], got {max_distance!r}")
    return float(max_distance)


def embedding_pairs(
    base: np.ndarray,
    queries: np.ndarray,
    max_distance: float,
    exact_max_rows: int = EXACT_MAX_ROWS,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query row, base row, cosine distance) of every row of `base` (N, D) within `max_distance`
    of each row of `queries` (Q, D), both L2-normalised; int64, int64, float32 arrays, self-matches
    included. Exact for N ≤ `exact_max_rows`, IVF join beyond (module docstring)."""
    if len(base) == 0 or len(queries) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    # Inner products strictly above the radius count; the epsilon keeps distance == max_distance.
    radius = np.float32(1.0 - max_distance - 1e-6)
    if len(base) <= exact_max_rows:
        return _flat_pairs(base, queries, radius)
    return _ivf_pairs(base, queries, radius, seed)


def _flat_pairs(
    base: np.ndarray, queries: np.ndarray, radius: np.float32
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    index = faiss.IndexFlatIP(base.shape[1])
    index.add(base)
    rows, cols, dists = [], [], []
    for start in range(0, len(queries), QUERY_CHUNK):
        lims, sims, ids = index.range_search(queries[start : start + QUERY_CHUNK], float(radius))
        counts = np.diff(lims).astype(np.int64)
        rows.append(np.repeat(np.arange(start, start + len(counts), dtype=np.int64), counts))
        cols.append(ids.astype(np.int64))
        dists.append(np.clip(1.0 - sims, 0.0, 2.0).astype(np.float32))
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(dists)


def ivf_lists(n: int) -> int:
    """Number of IVF lists for `n` base rows: 2·√n rounded to a power of two, 64–16,384."""
    return int(min(16_384, max(64, 2 ** round(math.log2(2 * math.sqrt(n))))))


def _ivf_pairs(
    base: np.ndarray, queries: np.ndarray, radius: np.float32, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Range join through an inverted file: each base row lies in its nearest of `ivf_lists(N)`
    spherical k-means centroids; each query is compared, by one matrix product per list, with the
    base rows of its `IVF_NPROBE` nearest lists."""
    n, dim = base.shape
    nlist = min(ivf_lists(n), n)
    # Coarse centroids only decide which rows meet: 8 iterations on 16 rows per list suffice.
    kmeans = faiss.Kmeans(dim, nlist, niter=8, seed=seed, spherical=True, max_points_per_centroid=16)
    kmeans.train(base)
    assert kmeans.centroids is not None  # set by train
    centroids = kmeans.centroids.T  # (D, nlist)
    base_list = np.concatenate(
        [np.argmax(base[s : s + PROBE_CHUNK] @ centroids, axis=1) for s in range(0, n, PROBE_CHUNK)]
    )
    nprobe = min(IVF_NPROBE, nlist)
    # (Q, nprobe) the nearest lists of each query, any order; copied so that each chunk's
    # (chunk, nlist) partition is freed at once rather than kept alive by a view.
    probes = np.concatenate(
        [
            np.argpartition(-(queries[s : s + PROBE_CHUNK] @ centroids), nprobe - 1, axis=1)[
                :, :nprobe
            ].copy()
            for s in range(0, len(queries), PROBE_CHUNK)
        ]
    )
    base_order = np.argsort(base_list, kind="stable")
    base_bounds = np.searchsorted(base_list[base_order], np.arange(nlist + 1))
    probe_lists = probes.ravel()
    probe_order = np.argsort(probe_lists, kind="stable")
    probe_query = (probe_order // probes.shape[1]).astype(np.int64)
    probe_bounds = np.searchsorted(probe_lists[probe_order], np.arange(nlist + 1))
    rows, cols, dists = [], [], []
    for lst in range(nlist):
        members = base_order[base_bounds[lst] : base_bounds[lst + 1]]
        askers = probe_query[probe_bounds[lst] : probe_bounds[lst + 1]]
        if len(members) == 0 or len(askers) == 0:
            continue
        block = max(1, JOIN_BLOCK // len(members))  # bounds one similarity matrix's size
        member_vectors = base[members].T  # (D, members)
        for start in range(0, len(askers), block):
            chunk = askers[start : start + block]
            sims = queries[chunk] @ member_vectors  # (chunk, members)
            q, b = np.nonzero(sims > radius)
            rows.append(chunk[q])
            cols.append(members[b])
            dists.append(np.clip(1.0 - sims[q, b], 0.0, 2.0))
    if not rows:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(dists).astype(np.float32)


def components(n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(n,) int64 group of each of n nodes joined by the edges rows[i]–cols[i], transitively;
    groups are numbered 0, 1, … in the order of their first (smallest) row."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if n == 0:
        return np.empty(0, np.int64)
    graph = coo_matrix((np.ones(len(rows), np.int8), (rows, cols)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=True, connection="weak")
    # Renumber by first appearance so the labels do not depend on scipy's traversal order.
    _, first = np.unique(labels, return_index=True)
    order = np.empty(len(first), np.int64)
    order[np.argsort(first)] = np.arange(len(first))
    return order[labels]


def hash_codes(hashes_hex: list[str]) -> np.ndarray:
    """(N, 8) uint8 codes of 64-bit hex perceptual hashes (16 hex digits each)."""
    bad = [h for h in hashes_hex if not isinstance(h, str) or len(h) != 16]
    if bad:
        raise ValueError(f"perceptual hashes must be 16 hex digits, got {bad[:3]}")
    return np.frombuffer(bytes.fromhex("".join(hashes_hex)), dtype=np.uint8).reshape(-1, 8).copy()


def hash_pairs(
    base_codes: np.ndarray, query_codes: np.ndarray, max_bits: int
) -> tuple[np.ndarray, np.ndarray]:
    """(query row, base row) of every pair of 64-bit codes ((N, 8) and (Q, 8) uint8) that differ in
    ≤ `max_bits` bits, exactly (self-matches included)."""
    if len(base_codes) == 0 or len(query_codes) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    n_chunks = min(64, max_bits + 1)
    index = faiss.IndexBinaryMultiHash(64, n_chunks, 64 // n_chunks)
    index.add(base_codes)
    # Binary range search keeps distances strictly below the radius.
    lims, _, ids = index.range_search(query_codes, max_bits + 1)
    rows = np.repeat(np.arange(len(query_codes), dtype=np.int64), np.diff(lims).astype(np.int64))
    return rows, ids.astype(np.int64)
